//! Who may read and write what on the relay: signed tokens (JWT, HS256 or EdDSA), static
//! keys from the configuration, and anonymous access (off unless asked for).
//!
//! A peer presents its token in the WebSocket upgrade request, as `?token=…` in the URL (the
//! official JS client only takes a URL) or as `Authorization: Bearer …`. A token's claims:
//!
//! ```json
//! { "sub": "alice", "exp": 1767225600, "read": ["4NMNnkMhL8jXrdJ9jamS58PAVdXu"], "write": "*" }
//! ```
//!
//! `read` and `write` are `"*"` (every document) or a list of document ids or
//! `automerge:` URLs; write implies read; a missing claim grants nothing. `exp` is required
//! (5 s of clock skew allowed) and checked when a connection opens: an open connection
//! outlives its token's expiry. Refusals name the reason without echoing the token.

use std::{collections::HashMap, fmt, str::FromStr};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use weft::{
    AutomergeUrl, DocumentId,
    net::{Authorize, Refused, UpgradeRequest},
    sync::{Access, Scope},
};

/// What peers without a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Anonymous {
    /// Read every document they know the id of.
    Read,
    /// Read and write every document they know the id of (local development).
    ReadWrite,
}

/// `"*"` or a list of documents, as in a token's `read` and `write` claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Grant {
    /// `"*"`: every document.
    Everything(String),
    /// Document ids or `automerge:` URLs.
    Documents(Vec<String>),
}

impl Default for Grant {
    fn default() -> Self {
        Self::Documents(Vec::new())
    }
}

impl Grant {
    /// Every document.
    pub fn everything() -> Self {
        Self::Everything("*".to_owned())
    }

    /// The documents granted.
    pub fn scope(&self) -> Result<Scope, String> {
        match self {
            Self::Everything(star) if star == "*" => Ok(Scope::All),
            Self::Everything(other) => Err(format!("{other:?} is neither \"*\" nor a list")),
            Self::Documents(documents) => documents
                .iter()
                .map(|document| parse_document(document))
                .collect::<Result<Vec<_>, _>>()
                .map(Scope::documents),
        }
    }
}

/// A document id or `automerge:` URL.
pub fn parse_document(text: &str) -> Result<DocumentId, String> {
    if text.starts_with("automerge:") {
        AutomergeUrl::from_str(text)
            .map(|url| url.document_id())
            .map_err(|error| format!("{text:?}: {error}"))
    } else {
        DocumentId::from_str(text).map_err(|error| format!("{text:?}: {error}"))
    }
}

/// The claims of a relay token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who: logged with the connection (a user id, a service name).
    pub sub: String,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    /// What it may read.
    #[serde(default)]
    pub read: Grant,
    /// What it may write (and read).
    #[serde(default)]
    pub write: Grant,
    /// Whether the bearer is another relay, which replicates every document it may read
    /// (they are offered to it unasked).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub relay: bool,
}

impl Claims {
    /// What the bearer may do, naming its subject as the connection's user (the relay
    /// records it as who delivered each change).
    fn access(&self) -> Result<Access, String> {
        let access = Access::new(self.read.scope()?, self.write.scope()?).for_user(&self.sub);
        Ok(if self.relay { access.replica() } else { access })
    }
}

/// Signs tokens the relay accepts with an HS256 secret (`weft-relay token`).
pub fn mint(secret: &[u8], claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
}

/// A key that verifies tokens.
#[derive(Clone)]
struct VerifyingKey {
    key: DecodingKey,
    algorithm: Algorithm,
}

/// The relay's credentials check: [`Authorize`] for [`weft::net::serve_with`].
#[derive(Clone, Default)]
pub struct Credentials {
    keys: Vec<VerifyingKey>,
    /// Static keys by the SHA-256 of the key (so a lookup leaks no timing about keys).
    static_keys: HashMap<[u8; 32], (String, Access)>,
    anonymous: Option<Anonymous>,
    /// A read-only follower: every peer's writes are taken away.
    follower: bool,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("token_keys", &self.keys.len())
            .field("static_keys", &self.static_keys.len())
            .field("anonymous", &self.anonymous)
            .finish()
    }
}

impl Credentials {
    /// Accepts HS256 tokens signed with `secret`.
    pub fn with_hs256_secret(mut self, secret: &[u8]) -> Self {
        self.keys.push(VerifyingKey {
            key: DecodingKey::from_secret(secret),
            algorithm: Algorithm::HS256,
        });
        self
    }

    /// Accepts EdDSA (Ed25519) tokens verified with a public key in PEM.
    pub fn with_eddsa_public_key(mut self, pem: &[u8]) -> Result<Self, String> {
        let key = DecodingKey::from_ed_pem(pem)
            .map_err(|error| format!("not an Ed25519 public key in PEM: {error}"))?;
        self.keys.push(VerifyingKey {
            key,
            algorithm: Algorithm::EdDSA,
        });
        Ok(self)
    }

    /// Accepts `key` itself as a token, granting `access`; `name` is what logs show.
    pub fn with_static_key(mut self, name: &str, key: &str, access: Access) -> Self {
        // The key's name is its connections' user.
        self.static_keys.insert(
            Sha256::digest(key.as_bytes()).into(),
            (name.to_owned(), access.for_user(name)),
        );
        self
    }

    /// Lets peers without a token in.
    pub fn with_anonymous(mut self, anonymous: Option<Anonymous>) -> Self {
        self.anonymous = anonymous;
        self
    }

    /// Whether any token can be checked (a key or a static key is configured).
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty() || !self.static_keys.is_empty()
    }

    /// For a read-only follower: whatever a token grants, the peer may only read.
    pub fn read_only_follower(mut self, follower: bool) -> Self {
        self.follower = follower;
        self
    }

    /// The access `token` grants (`None`: no token was presented).
    pub fn check(&self, token: Option<&str>) -> Result<Access, Refused> {
        let access = self.grant(token)?;
        Ok(if self.follower {
            access.without_writes()
        } else {
            access
        })
    }

    fn grant(&self, token: Option<&str>) -> Result<Access, Refused> {
        let Some(token) = token else {
            return match self.anonymous {
                Some(Anonymous::Read) => Ok(Access::read_only()),
                Some(Anonymous::ReadWrite) => Ok(Access::full()),
                None => Err(Refused(
                    "a token is required (as ?token= or an Authorization header)".to_owned(),
                )),
            };
        };
        if let Some((name, access)) = self
            .static_keys
            .get(&<[u8; 32]>::from(Sha256::digest(token.as_bytes())))
        {
            tracing::debug!(key = %name, "static key accepted");
            return Ok(access.clone());
        }
        let claims = self.verify(token)?;
        let access = claims
            .access()
            .map_err(|error| Refused(format!("invalid token claims: {error}")))?;
        tracing::debug!(subject = %claims.sub, "token accepted");
        Ok(access)
    }

    fn verify(&self, token: &str) -> Result<Claims, Refused> {
        let mut refusal = Refused("invalid token".to_owned());
        for key in &self.keys {
            let mut validation = Validation::new(key.algorithm);
            validation.set_required_spec_claims(&["exp", "sub"]);
            // Clock skew allowed on `exp`: a few seconds, not jsonwebtoken's default minute.
            validation.leeway = 5;
            match jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(error) => {
                    if let ErrorKind::ExpiredSignature = error.kind() {
                        refusal = Refused("token expired".to_owned());
                    }
                }
            }
        }
        Err(refusal)
    }
}

impl Authorize for Credentials {
    fn authorize(&self, request: &UpgradeRequest) -> Result<Access, Refused> {
        self.check(token_of(request)?.as_deref())
    }
}

/// The token of an upgrade request: `Authorization: Bearer …`, else `?token=…`. A
/// credential that is there but unusable is refused, never ignored (which would quietly
/// make the peer anonymous).
fn token_of(request: &UpgradeRequest) -> Result<Option<String>, Refused> {
    if let Some(header) = request.headers().get("authorization") {
        let value = header.to_str().unwrap_or_default().trim();
        return match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Ok(Some(token.trim().to_owned()))
            }
            _ => Err(Refused(
                "the Authorization header must be \"Bearer <token>\"".to_owned(),
            )),
        };
    }
    let Some(query) = request.uri().query() else {
        return Ok(None);
    };
    match query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
    {
        None => Ok(None),
        Some(value) => percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map(|token| Some(token.into_owned()))
            .map_err(|_| Refused("the token in the URL is not valid UTF-8".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn claims(read: Grant, write: Grant, exp: u64) -> Claims {
        Claims {
            sub: "alice".to_owned(),
            exp,
            read,
            write,
            relay: false,
        }
    }

    fn in_an_hour() -> u64 {
        jsonwebtoken::get_current_timestamp() + 3600
    }

    #[test]
    fn tokens_grant_what_their_claims_say() {
        let document = DocumentId::random();
        let other = DocumentId::random();
        let credentials = Credentials::default().with_hs256_secret(b"secret");
        let token = mint(
            b"secret",
            &claims(
                Grant::Documents(vec![format!("automerge:{document}")]),
                Grant::default(),
                in_an_hour(),
            ),
        )
        .unwrap();
        let access = credentials.check(Some(&token)).unwrap();
        assert!(access.can_read(document) && !access.can_write(document));
        assert!(!access.can_read(other));
        let writer = mint(
            b"secret",
            &claims(Grant::default(), Grant::everything(), in_an_hour()),
        )
        .unwrap();
        assert!(credentials.check(Some(&writer)).unwrap().can_write(other));
    }

    #[test]
    fn wrong_expired_and_tampered_tokens_are_refused_with_a_reason() {
        let credentials = Credentials::default().with_hs256_secret(b"secret");
        let good = claims(Grant::everything(), Grant::everything(), in_an_hour());
        let wrong_key = mint(b"another secret", &good).unwrap();
        assert_eq!(
            credentials.check(Some(&wrong_key)),
            Err(Refused("invalid token".to_owned()))
        );
        let expired = mint(
            b"secret",
            &claims(Grant::everything(), Grant::everything(), 1_000_000),
        )
        .unwrap();
        assert_eq!(
            credentials.check(Some(&expired)),
            Err(Refused("token expired".to_owned()))
        );
        // A read-only token whose payload is swapped for a writer's: the signature no longer
        // matches.
        let reader = mint(
            b"secret",
            &claims(Grant::everything(), Grant::default(), in_an_hour()),
        )
        .unwrap();
        let writer = mint(b"secret", &good).unwrap();
        let parts: Vec<&str> = reader.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            writer.split('.').nth(1).unwrap(),
            parts[2]
        );
        assert_eq!(
            credentials.check(Some(&forged)),
            Err(Refused("invalid token".to_owned()))
        );
        assert!(credentials.check(Some("garbage")).is_err());
        assert!(
            credentials
                .check(None)
                .unwrap_err()
                .0
                .contains("a token is required")
        );
        let bad_claims = mint(
            b"secret",
            &claims(
                Grant::Documents(vec!["nope".to_owned()]),
                Grant::default(),
                in_an_hour(),
            ),
        )
        .unwrap();
        assert!(
            credentials
                .check(Some(&bad_claims))
                .unwrap_err()
                .0
                .starts_with("invalid token claims")
        );
    }

    #[test]
    fn static_keys_and_anonymous_access() {
        let credentials = Credentials::default()
            .with_static_key("ci", "let-me-in", Access::read_only())
            .with_anonymous(Some(Anonymous::Read));
        // A static key's connections are its name's (who delivered their changes).
        assert_eq!(
            credentials.check(Some("let-me-in")),
            Ok(Access::read_only().for_user("ci"))
        );
        assert!(credentials.check(Some("let-me-out")).is_err());
        assert_eq!(credentials.check(None), Ok(Access::read_only()));
        let open = Credentials::default().with_anonymous(Some(Anonymous::ReadWrite));
        assert_eq!(open.check(None), Ok(Access::full()));
    }

    #[test]
    fn the_token_comes_from_the_header_or_the_query() {
        let request = |uri: &str, header: Option<&str>| {
            let mut builder = UpgradeRequest::builder().uri(uri);
            if let Some(header) = header {
                builder = builder.header("Authorization", header);
            }
            builder.body(()).unwrap()
        };
        let token = |uri: &str, header: Option<&str>| token_of(&request(uri, header));
        assert_eq!(
            token("/?a=1&token=abc%2Ed", None),
            Ok(Some("abc.d".to_owned()))
        );
        assert_eq!(
            token("/?token=query", Some("bearer header")),
            Ok(Some("header".to_owned()))
        );
        assert_eq!(token("/", None), Ok(None));
        // There but unusable: refused, not taken as no token at all.
        assert!(token("/", Some("Basic dXNlcjpwYXNz")).is_err());
        assert!(token("/?token=%FF", None).is_err());
    }
}
