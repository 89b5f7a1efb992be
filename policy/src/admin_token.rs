use crate::Subject;

/// The node's admin API token, compared in constant time.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// Whether `presented` is the admin token.
    pub fn matches(&self, presented: &str) -> bool {
        constant_time_eq(presented.as_bytes(), self.0.as_bytes())
    }

    /// Identifies the caller from an `Authorization` header value, if any.
    /// Anything but the exact admin token is an anonymous caller.
    pub fn subject(&self, authorization: Option<&str>) -> Subject {
        let presented = authorization.and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
        match presented {
            Some(token) if constant_time_eq(token.as_bytes(), self.0.as_bytes()) => Subject::Admin,
            _ => Subject::Anonymous,
        }
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_admin() {
        let token = AdminToken::new("s3cret");
        assert_eq!(token.subject(Some("Bearer s3cret")), Subject::Admin);
        assert_eq!(token.subject(Some("bearer s3cret ")), Subject::Admin);
        assert_eq!(token.subject(Some("Bearer s3cre")), Subject::Anonymous);
        assert_eq!(token.subject(Some("Basic s3cret")), Subject::Anonymous);
        assert_eq!(token.subject(Some("s3cret")), Subject::Anonymous);
        assert_eq!(token.subject(None), Subject::Anonymous);
    }
}
