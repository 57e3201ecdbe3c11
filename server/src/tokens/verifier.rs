//! Checks connection tokens: the signature with the configured key (HS256
//! secret, or an RS256/ES256 public key), the algorithm against that key's
//! (so neither `alg: none` nor an HS256 token "signed" with the public key
//! passes), expiry, and the audience and issuer when they are configured.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_shared::Nickname;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::claims::Claims;
use super::grants::RoomGrants;

/// The shortest HS256 secret accepted: RFC 7518 §3.2 asks for a key at
/// least as long as the hash (256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// The latest `exp` taken as it is (the year 2500); a later one counts as
/// this (a clock cannot hold every number an issuer may write).
const FAR_FUTURE_SECS: u64 = 16_725_225_600;

/// The longest token looked at; longer ones are refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why the configured key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// The secret is too short.
    #[error("the HS256 secret has {bytes} bytes; it needs at least {MIN_SECRET_BYTES}")]
    ShortSecret { bytes: usize },
    /// Not an RSA or EC public key in PEM.
    #[error("{path} holds no RSA or EC (P-256) public key in PEM")]
    NotAPublicKey { path: String },
}

/// Why a token was refused; the message is fit to show to its user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// This server was started without a token key.
    #[error("this server does not accept connection tokens")]
    NotAccepted,
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("the token is too long")]
    TooLong,
    /// Past its `exp`.
    #[error("the token has expired")]
    Expired,
    /// Its `nbf` is still ahead.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Signed with another algorithm than the key's (`none` included).
    #[error("the token's algorithm is not the one this server accepts")]
    WrongAlgorithm,
    /// The signature does not match.
    #[error("the token's signature is not valid")]
    BadSignature,
    /// `aud` is not the configured audience.
    #[error("the token is not meant for this server (audience)")]
    WrongAudience,
    /// `iss` is not the configured issuer.
    #[error("the token was not issued by whom this server trusts (issuer)")]
    WrongIssuer,
    /// Not a JWT, or its claims are not ours (`sub`, `exp`, a valid `name`, `rooms`).
    #[error("the token is malformed: {0}")]
    Malformed(String),
}

/// What an accepted token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The user (`sub`).
    pub user: String,
    /// The name they speak under: `name`, or else `sub`.
    pub name: Nickname,
    /// Their rooms.
    pub grants: RoomGrants,
    /// When it expires.
    pub expires_at: SystemTime,
}

/// The key and rules tokens are checked against.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    /// A verifier of HS256 tokens signed with the secret in `path` (its
    /// content, without a trailing newline).
    pub fn hs256_from_file(path: &Path) -> Result<Self, KeyError> {
        Self::hs256(&read_secret(path)?)
    }

    /// A verifier of HS256 tokens signed with `secret` (at least
    /// [`MIN_SECRET_BYTES`]).
    pub fn hs256(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(KeyError::ShortSecret { bytes: secret.len() });
        }
        let key = DecodingKey::from_secret(secret).map_err(|_| KeyError::ShortSecret { bytes: secret.len() })?;
        Ok(Self { key, validation: validation(Algorithm::HS256) })
    }

    /// A verifier of RS256 (RSA key) or ES256 (EC P-256 key) tokens, by the
    /// PEM public key in `path`.
    pub fn public_key_from_file(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| KeyError::Read { path: shown.clone(), source })?;
        if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
            return Ok(Self { key, validation: validation(Algorithm::RS256) });
        }
        if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
            return Ok(Self { key, validation: validation(Algorithm::ES256) });
        }
        Err(KeyError::NotAPublicKey { path: shown })
    }

    /// Also requires `aud` to be `audience`.
    pub fn with_audience(mut self, audience: &str) -> Self {
        self.validation.set_audience(&[audience]);
        self.validation.validate_aud = true;
        self.validation.required_spec_claims.insert("aud".into());
        self
    }

    /// Also requires `iss` to be `issuer`.
    pub fn with_issuer(mut self, issuer: &str) -> Self {
        self.validation.set_issuer(&[issuer]);
        self.validation.required_spec_claims.insert("iss".into());
        self
    }

    /// Checks `token` as of now.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        // Read first, for a clear refusal of `none` and of other families
        // (the library refuses them too, as a parse error or a mismatch).
        if let Some(named) = header_algorithm(token)
            && !named.parse::<Algorithm>().is_ok_and(|alg| self.validation.algorithms.contains(&alg))
        {
            return Err(TokenError::WrongAlgorithm);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|error| refusal(error.kind()))?
            .claims;
        let name = Nickname::parse(claims.name.unwrap_or_else(|| claims.sub.clone()))
            .map_err(|error| TokenError::Malformed(format!("its name is not a valid nickname: {error}")))?;
        let grants =
            RoomGrants::parse(claims.rooms.as_deref()).map_err(|error| TokenError::Malformed(error.to_string()))?;
        let expires_at = UNIX_EPOCH + Duration::from_secs(claims.exp.min(FAR_FUTURE_SECS));
        Ok(VerifiedToken { user: claims.sub, name, grants, expires_at })
    }
}

/// The rules for `algorithm`: `sub` and `exp` required, no leeway (a
/// token is good until its `exp`, the moment its connections close).
fn validation(algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub"]);
    // Checked only when an audience is configured (`with_audience`).
    validation.validate_aud = false;
    validation.validate_nbf = true;
    validation
}

/// The `alg` a token's header names, if it has a readable header.
fn header_algorithm(token: &str) -> Option<String> {
    use base64::Engine;
    let header = token.split('.').next()?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&json).ok()?;
    Some(header.get("alg")?.as_str()?.to_owned())
}

fn refusal(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::MissingAlgorithm => {
            TokenError::WrongAlgorithm
        }
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
            TokenError::Malformed("it is not a JSON Web Token".into())
        }
        ErrorKind::MissingRequiredClaim(claim) => TokenError::Malformed(format!("it has no “{claim}”")),
        other => TokenError::Malformed(format!("{other:?}")),
    }
}

/// The secret in a secret file: its bytes but a trailing newline.
pub fn read_secret(path: &Path) -> Result<Vec<u8>, KeyError> {
    let mut bytes =
        std::fs::read(path).map_err(|source| KeyError::Read { path: path.display().to_string(), source })?;
    for end in [b'\n', b'\r'] {
        if bytes.last() == Some(&end) {
            bytes.pop();
        }
    }
    Ok(bytes)
}
