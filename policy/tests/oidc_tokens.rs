//! The token verifier against a real HTTP provider on loopback (discovery and a JWKS that
//! can be made slow): a key refresh never delays tokens signed with known keys, refreshes
//! are single-flight and rate-limited, and only access tokens pass.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use urbanmesh_policy::{ACCESS_TOKEN_TYPE, OidcSettings, PolicyError, TokenVerifier};

// Two Ed25519 keys made for these tests (`openssl genpkey -algorithm ed25519`, PKCS#8 DER
// in hex) and their public halves (the JWK `x`).
const KEY_1: &str = "302e020100300506032b657004220420ff2c985f32f75a4c16dc7a171079552b1be6a349e8c69a7b7534a3989b57bfe4";
const KEY_1_X: &str = "IE8Z-3Oni47q8XJQ5MjlWNF8cSar_KnkqyN_aw_XcIA";
const KEY_2: &str = "302e020100300506032b657004220420f6322b21beecbd3a7a7367fc84df73c7d40db122d6296369ee3dff06cf261b88";
const KEY_2_X: &str = "522drlIZffHESCo9HmuQB2hmnYsJwtjE0GkWFJKS0fI";

const DEADLINE: Duration = Duration::from_secs(10);

/// A provider serving discovery and a JWKS; JWKS answers can be held back.
struct Provider {
    issuer: String,
    jwks: Arc<Mutex<Value>>,
    /// JWKS requests received so far.
    requests: watch::Receiver<usize>,
    /// While `true`, JWKS requests are answered only once it turns `false`.
    stall: watch::Sender<bool>,
}

fn jwk(kid: &str, x: &str) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"})
}

impl Provider {
    async fn start(keys: Vec<Value>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let issuer = format!("http://{}", listener.local_addr().expect("address"));
        let jwks = Arc::new(Mutex::new(json!({ "keys": keys })));
        let (count, requests) = watch::channel(0usize);
        let (stall, stalled) = watch::channel(false);
        let served = (issuer.clone(), Arc::clone(&jwks), Arc::new(count), stalled);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (issuer, jwks, count, stalled) =
                    (served.0.clone(), Arc::clone(&served.1), Arc::clone(&served.2), served.3.clone());
                tokio::spawn(answer(stream, issuer, jwks, count, stalled));
            }
        });
        Self { issuer, jwks, requests, stall }
    }

    fn publish(&self, keys: Vec<Value>) {
        *self.jwks.lock().unwrap_or_else(PoisonError::into_inner) = json!({ "keys": keys });
    }

    fn jwks_requests(&self) -> usize {
        *self.requests.borrow()
    }

    fn verifier(&self, token_types: &[&str]) -> Arc<TokenVerifier> {
        Arc::new(self.settings(token_types))
    }

    fn settings(&self, token_types: &[&str]) -> TokenVerifier {
        TokenVerifier::new(OidcSettings {
            issuer: self.issuer.clone(),
            audience: "urbanmesh".into(),
            roles_claim: "realm_access.roles".into(),
            tenant_claim: None,
            tenant: "herford".into(),
            token_types: token_types.iter().map(|t| (*t).to_owned()).collect(),
        })
        .expect("verifier")
    }

    fn token(&self, key: &str, kid: &str, typ: Option<&str>, extra: Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        header.typ = typ.map(str::to_owned);
        let mut claims = json!({
            "iss": self.issuer, "aud": "urbanmesh", "sub": "anna",
            "exp": chrono::Utc::now().timestamp() + 600,
            "realm_access": {"roles": ["viewer"]},
        });
        if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
            claims.extend(extra.clone());
        }
        let der: Vec<u8> =
            (0..key.len()).step_by(2).map(|i| u8::from_str_radix(&key[i..i + 2], 16).expect("hex")).collect();
        encode(&header, &claims, &EncodingKey::from_ed_der(&der)).expect("token")
    }
}

async fn answer(
    mut stream: TcpStream,
    issuer: String,
    jwks: Arc<Mutex<Value>>,
    count: Arc<watch::Sender<usize>>,
    mut stalled: watch::Receiver<bool>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
    let body = match path.as_str() {
        "/.well-known/openid-configuration" => json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}),
        "/jwks" => {
            count.send_modify(|n| *n += 1);
            if stalled.wait_for(|stall| !*stall).await.is_err() {
                return;
            }
            jwks.lock().unwrap_or_else(PoisonError::into_inner).clone()
        }
        _ => {
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
            return;
        }
    };
    let body = body.to_string();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_key_refresh_delays_no_token_signed_with_a_known_key() {
    let provider = Provider::start(vec![jwk("k1", KEY_1_X)]).await;
    // No rate limit here, so that the rotation below is fetched at once.
    let verifier =
        Arc::new(provider.settings(&[ACCESS_TOKEN_TYPE]).with_refetch_interval(Duration::ZERO).expect("verifier"));
    let known = provider.token(KEY_1, "k1", Some("at+jwt"), json!({}));
    assert_eq!(verifier.verify(&known).await.expect("known key").id, "anna");
    assert_eq!(provider.jwks_requests(), 1);

    // The provider rotates in a second key and its JWKS becomes slow.
    provider.publish(vec![jwk("k1", KEY_1_X), jwk("k2", KEY_2_X)]);
    provider.stall.send_replace(true);
    let rotated = provider.token(KEY_2, "k2", Some("at+jwt"), json!({}));
    let waiting: Vec<_> = (0..8)
        .map(|_| {
            let (verifier, token) = (Arc::clone(&verifier), rotated.clone());
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    let mut requests = provider.requests.clone();
    tokio::time::timeout(DEADLINE, requests.wait_for(|n| *n >= 2))
        .await
        .expect("the unknown key makes the verifier fetch the keys")
        .expect("provider running");

    // While that fetch hangs, tokens with the known key verify at once.
    for _ in 0..100 {
        let person = tokio::time::timeout(Duration::from_secs(2), verifier.verify(&known))
            .await
            .expect("a known key must not wait for the refresh")
            .expect("known key");
        assert_eq!(person.id, "anna");
    }

    provider.stall.send_replace(false);
    for task in waiting {
        let verified = tokio::time::timeout(DEADLINE, task).await.expect("refresh finishes").expect("task");
        assert_eq!(verified.expect("the rotated key is known after the refresh").id, "anna");
    }
    assert_eq!(provider.jwks_requests(), 2, "eight callers with an unknown key share one fetch");
}

#[tokio::test]
async fn keys_the_provider_does_not_publish_are_asked_for_at_most_once_per_interval() {
    let provider = Provider::start(vec![jwk("k1", KEY_1_X)]).await;
    let verifier = provider.verifier(&[ACCESS_TOKEN_TYPE]);
    let known = provider.token(KEY_1, "k1", Some("at+jwt"), json!({}));
    assert_eq!(verifier.verify(&known).await.expect("known key").id, "anna");
    for kid in ["k2", "k3", "guess"] {
        let unknown = provider.token(KEY_2, kid, Some("at+jwt"), json!({}));
        for _ in 0..20 {
            let refused =
                tokio::time::timeout(Duration::from_secs(2), verifier.verify(&unknown)).await.expect("at once");
            assert!(matches!(&refused, Err(PolicyError::Token(m)) if m.contains("does not publish")), "{refused:?}");
        }
    }
    assert_eq!(provider.jwks_requests(), 1, "invented key ids do not make the node ask the provider");
}

#[tokio::test]
async fn only_access_tokens_pass_and_other_tokens_fetch_no_keys() {
    let provider = Provider::start(vec![jwk("k1", KEY_1_X)]).await;
    let verifier = provider.verifier(&[ACCESS_TOKEN_TYPE]);
    for (typ, extra, refusal) in [
        (Some("JWT"), json!({}), "header `typ` is `JWT`"),
        (None, json!({}), "header `typ` is missing"),
        (Some("id_token+jwt"), json!({}), "header `typ` is `id_token+jwt`"),
    ] {
        let token = provider.token(KEY_1, "k1", typ, extra);
        let refused = verifier.verify(&token).await;
        assert!(matches!(&refused, Err(PolicyError::Token(m)) if m.contains(refusal)), "{typ:?}: {refused:?}");
    }
    assert_eq!(provider.jwks_requests(), 0, "tokens of the wrong type make the node fetch nothing");

    for claim in ["nonce", "at_hash", "c_hash"] {
        let token = provider.token(KEY_1, "k1", Some("at+jwt"), json!({ claim: "x" }));
        let refused = verifier.verify(&token).await;
        assert!(
            matches!(&refused, Err(PolicyError::Token(m)) if m.contains(&format!("carries `{claim}`"))),
            "{claim}: {refused:?}"
        );
    }
    for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
        let token = provider.token(KEY_1, "k1", Some(typ), json!({}));
        assert_eq!(verifier.verify(&token).await.expect(typ).id, "anna");
    }

    // A Keycloak that writes `typ: JWT` on every token names the kind in a claim.
    let keycloak = provider.verifier(&[ACCESS_TOKEN_TYPE, "JWT"]);
    let access = provider.token(KEY_1, "k1", Some("JWT"), json!({"typ": "Bearer"}));
    assert_eq!(keycloak.verify(&access).await.expect("Keycloak access token").id, "anna");
    let id_token = provider.token(KEY_1, "k1", Some("JWT"), json!({"typ": "ID"}));
    let refused = keycloak.verify(&id_token).await;
    assert!(matches!(&refused, Err(PolicyError::Token(m)) if m.contains("claim `typ` is `ID`")), "{refused:?}");
}
