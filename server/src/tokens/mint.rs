//! `chat-server token`: mints an HS256 connection token with the server's
//! secret, for trying embedding out and for scripts and tests.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use serde::Serialize;

use super::claims::Claims;
use super::grants::RoomGrants;
use super::verifier::{KeyError, TokenVerifier, read_secret};

/// Mints a connection token (HS256) and prints it.
#[derive(Debug, Parser)]
#[command(name = "chat-server token", about = "Mint a connection token (HS256) with the server's secret.")]
pub struct MintCommand {
    /// The file holding the server's HS256 secret (as `--jwt-hs256-secret-file`).
    #[arg(long, env = "CHAT_JWT_HS256_SECRET_FILE")]
    pub jwt_hs256_secret_file: PathBuf,
    /// The user.
    #[arg(long)]
    pub sub: String,
    /// The name they speak under (default: `--sub`).
    #[arg(long)]
    pub name: Option<String>,
    /// Rooms granted, comma-separated: `lobby`, `team-*` (a prefix),
    /// `news:read` (read only). Default: every room.
    #[arg(long, value_delimiter = ',')]
    pub rooms: Option<Vec<String>>,
    /// How long it is good for (`90s`, `30m`, `1h`, `2days`).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    /// Its audience (`aud`), if the server checks one.
    #[arg(long, env = "CHAT_JWT_AUDIENCE")]
    pub audience: Option<String>,
    /// Its issuer (`iss`), if the server checks one.
    #[arg(long, env = "CHAT_JWT_ISSUER")]
    pub issuer: Option<String>,
}

/// Why no token was minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// The secret is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The claims would be refused.
    #[error("{0}")]
    Claims(String),
    /// Signing failed.
    #[error("cannot sign the token: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

/// What a minted token carries.
#[derive(Serialize)]
struct Minted<'a> {
    #[serde(flatten)]
    claims: &'a Claims,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
}

impl MintCommand {
    /// The token these arguments describe, signed with the secret file's key
    /// and checked as the server would check it.
    pub fn mint(&self) -> Result<String, MintError> {
        // Read as the server reads it.
        let secret = read_secret(&self.jwt_hs256_secret_file)?;
        let verifier = TokenVerifier::hs256(&secret)?;
        RoomGrants::parse(self.rooms.as_deref()).map_err(|error| MintError::Claims(error.to_string()))?;
        let exp = (SystemTime::now() + self.ttl).duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let claims = Claims { sub: self.sub.clone(), exp, name: self.name.clone(), rooms: self.rooms.clone() };
        let token = mint_hs256(&secret, &claims, self.audience.as_deref(), self.issuer.as_deref())?;
        // Checked as the server would check it.
        let verifier = match &self.audience {
            Some(audience) => verifier.with_audience(audience),
            None => verifier,
        };
        let verifier = match &self.issuer {
            Some(issuer) => verifier.with_issuer(issuer),
            None => verifier,
        };
        verifier.verify(&token).map_err(|error| MintError::Claims(error.to_string()))?;
        Ok(token)
    }
}

/// `claims` (plus `aud` and `iss` if given) signed with HS256 and `secret`.
pub fn mint_hs256(
    secret: &[u8],
    claims: &Claims,
    audience: Option<&str>,
    issuer: Option<&str>,
) -> Result<String, jsonwebtoken::errors::Error> {
    let key = jsonwebtoken::EncodingKey::from_secret(secret)?;
    let minted = Minted { claims, aud: audience, iss: issuer };
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &minted, &key)
}
