use std::sync::Arc;

use crate::{AdminToken, PolicyError, Subject, TokenVerifier};

/// Turns the credentials a request presents into its subject: the admin token, a bearer
/// JWT of the OpenID provider, or nothing (anonymous). A token that is presented but not
/// accepted is an error, never a silent downgrade to anonymous.
#[derive(Clone)]
pub struct Identities {
    admin_token: AdminToken,
    verifier: Option<Arc<TokenVerifier>>,
}

impl Identities {
    pub fn new(admin_token: AdminToken, verifier: Option<Arc<TokenVerifier>>) -> Self {
        Self { admin_token, verifier }
    }

    pub fn verifier(&self) -> Option<&Arc<TokenVerifier>> {
        self.verifier.as_ref()
    }

    /// The subject of an `Authorization` header value.
    pub async fn subject(&self, authorization: Option<&str>) -> Result<Subject, PolicyError> {
        let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Subject::Anonymous);
        };
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(PolicyError::Token("use `Authorization: Bearer <token>`".into())),
        };
        if self.admin_token.matches(token) {
            return Ok(Subject::Admin);
        }
        match &self.verifier {
            Some(verifier) if token.contains('.') => Ok(Subject::Person(verifier.verify(token).await?)),
            _ => {
                Err(PolicyError::Token("not the admin token, and not a token of the configured OpenID provider".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_exact_bearer_token_is_admin_and_other_credentials_are_refused() {
        let identities = Identities::new(AdminToken::new("s3cret"), None);
        assert_eq!(identities.subject(Some("Bearer s3cret")).await.ok(), Some(Subject::Admin));
        assert_eq!(identities.subject(Some("bearer s3cret ")).await.ok(), Some(Subject::Admin));
        assert_eq!(identities.subject(None).await.ok(), Some(Subject::Anonymous));
        for refused in ["Bearer s3cre", "Basic s3cret", "s3cret"] {
            assert!(identities.subject(Some(refused)).await.is_err(), "{refused}");
        }
    }
}
