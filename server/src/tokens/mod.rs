//! Connection tokens, for sites that embed the chat: a JWT their backend
//! signs says who the user is (`sub`, `name`), until when (`exp`), and
//! which rooms they may read or post in (`rooms`). The server checks them
//! with `--jwt-hs256-secret-file` or `--jwt-public-key`.

pub mod claims;
pub mod grants;
pub mod mint;
pub mod verifier;

pub use grants::RoomGrants;
pub use verifier::{TokenError, TokenVerifier, VerifiedToken};
