//! Accounts: names people register with a password, so nobody else can use
//! them. Registration and sign-in ([`Accounts::register`], [`Accounts::sign_in`])
//! give a session token the browser keeps in an `HttpOnly` cookie; the
//! socket upgrade reads it ([`Accounts::session_user`]) and the session then
//! speaks under the account's name. A registered name is reserved
//! server-wide: a guest's join with it (in any case or look-alike form,
//! see [`name_key`]) is refused.

pub mod attempts;
pub mod name_key;
pub mod password;
pub mod postgres;
pub mod revocations;
pub mod session_token;
pub mod signed_out_relay;
pub mod sqlite;
pub mod store;
pub mod sweep;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chat_shared::Nickname;
use chat_shared::api::{PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS};

use attempts::AttemptLimits;
use password::{Busy, PasswordHasher};
use store::{AccountStore, SessionUser};

use crate::store::StoreError;

/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The username is not a valid nickname.
    #[error("a username is what a nickname may be: {0}")]
    InvalidUsername(String),
    /// The password is too short or too long.
    #[error("a password has at least {PASSWORD_MIN_CHARS} characters and at most {PASSWORD_MAX_BYTES} bytes")]
    InvalidPassword,
    /// The name (or one that looks the same) is registered.
    #[error("“{0}” is already registered")]
    UsernameTaken(String),
    /// Wrong username or password.
    #[error("wrong username or password")]
    InvalidCredentials,
    /// Too many attempts; retry after this long.
    #[error("too many attempts; retry in {} s", .0.as_secs().max(1))]
    RateLimited(Duration),
    /// Too many passwords being hashed at once.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The account service every route and socket upgrade shares.
pub struct Accounts {
    store: Arc<dyn AccountStore>,
    hasher: PasswordHasher,
    limits: AttemptLimits,
    /// Name keys this node has seen registered: answered without the
    /// database (names are never unregistered), and while it is away.
    known_reserved: RwLock<HashSet<String>>,
}

/// A signed-in session: its account, and the token its cookie carries.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The account.
    pub user: SessionUser,
    /// The session's token (to set in the cookie; never stored).
    pub token: String,
}

/// Now, in ms since the Unix epoch (what the stores keep times as).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Accounts {
    /// Accounts kept in `store`, passwords hashed `parallel` at a time,
    /// guessing limited by `limits`.
    pub fn new(store: Arc<dyn AccountStore>, parallel: usize, limits: AttemptLimits) -> Self {
        Self { store, hasher: PasswordHasher::new(parallel), limits, known_reserved: RwLock::default() }
    }

    fn check_password(password: &str) -> Result<(), AccountError> {
        if password.chars().count() < PASSWORD_MIN_CHARS || password.len() > PASSWORD_MAX_BYTES {
            return Err(AccountError::InvalidPassword);
        }
        Ok(())
    }

    /// Registers `username` and signs it in.
    pub async fn register(&self, username: &str, password: &str, from: IpAddr) -> Result<SignedIn, AccountError> {
        let name = Nickname::parse(username).map_err(|error| AccountError::InvalidUsername(error.to_string()))?;
        Self::check_password(password)?;
        self.limits.may_register(from, Instant::now()).await.map_err(AccountError::RateLimited)?;
        let key = name_key::name_key(name.as_str());
        if self.store.user_by_key(&key).await?.is_some() {
            return Err(AccountError::UsernameTaken(name.as_str().to_owned()));
        }
        let hash = self.hasher.hash(password).await?;
        // The unique key decides a race between two registrations of one name.
        let Some(id) = self.store.create_user(name.as_str(), &key, &hash, now_ms()).await? else {
            return Err(AccountError::UsernameTaken(name.as_str().to_owned()));
        };
        tracing::info!(user = id, name = %name, "account registered");
        self.known_reserved.write().unwrap_or_else(PoisonError::into_inner).insert(key);
        self.start_session(SessionUser { id, name: name.as_str().to_owned() }).await
    }

    /// Signs `username` in if `password` is its password.
    pub async fn sign_in(&self, username: &str, password: &str, from: IpAddr) -> Result<SignedIn, AccountError> {
        let key = name_key::name_key(username);
        self.limits.may_sign_in(from, &key, Instant::now()).await.map_err(AccountError::RateLimited)?;
        // An over-long password fails like a wrong one (after the same work).
        let password = if password.len() > PASSWORD_MAX_BYTES { "" } else { password };
        let user = self.store.user_by_key(&key).await?;
        let matches = self.hasher.verify(password, user.as_ref().map(|user| user.password_hash.as_str())).await?;
        match user {
            Some(user) if matches => {
                self.limits.succeeded(&key).await;
                self.start_session(SessionUser { id: user.id, name: user.name }).await
            }
            _ => {
                self.limits.failed(from, &key, Instant::now()).await;
                tracing::info!(%from, "a sign-in failed");
                Err(AccountError::InvalidCredentials)
            }
        }
    }

    async fn start_session(&self, user: SessionUser) -> Result<SignedIn, AccountError> {
        let token = session_token::fresh();
        let now = now_ms();
        let expires = now.saturating_add(i64::try_from(SESSION_LIFETIME.as_millis()).unwrap_or(i64::MAX));
        self.store.create_session(&session_token::stored_form(&token), user.id, now, expires).await?;
        Ok(SignedIn { user, token })
    }

    /// The account of the session `token` belongs to, if it is current.
    pub async fn session_user(&self, token: &str) -> Result<Option<SessionUser>, StoreError> {
        self.store.session_user(&session_token::stored_form(token), now_ms()).await
    }

    /// Ends the session of `token`.
    pub async fn sign_out(&self, token: &str) -> Result<(), StoreError> {
        self.store.delete_session(&session_token::stored_form(token)).await
    }

    /// Ends every session of `user`.
    pub async fn sign_out_everywhere(&self, user: &SessionUser) -> Result<(), StoreError> {
        self.store.delete_sessions_of(user.id).await
    }

    /// The account named `name` (or a name that looks the same).
    pub async fn user_named(&self, name: &str) -> Result<Option<SessionUser>, StoreError> {
        let user = self.store.user_by_key(&name_key::name_key(name)).await?;
        Ok(user.map(|user| SessionUser { id: user.id, name: user.name }))
    }

    /// Which of `users` have a current session.
    pub async fn with_sessions(&self, users: &[store::UserId]) -> Result<HashSet<store::UserId>, StoreError> {
        self.store.with_sessions(users, now_ms()).await
    }

    /// Whether `nick` is (or looks the same as) a registered account's
    /// name. Names this node has seen registered are answered from memory;
    /// others from the database. While the database is away, a name not seen
    /// yet counts as free: guests keep chatting through an outage (when
    /// nobody can register either), at the cost of a name registered on
    /// another node and never seen here being usable by a guest until it is
    /// back.
    pub async fn is_reserved(&self, nick: &Nickname) -> bool {
        let key = name_key::name_key(nick.as_str());
        if self.known_reserved.read().unwrap_or_else(PoisonError::into_inner).contains(&key) {
            return true;
        }
        match self.store.user_by_key(&key).await {
            Ok(Some(_)) => {
                self.known_reserved.write().unwrap_or_else(PoisonError::into_inner).insert(key);
                true
            }
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(%error, "cannot check a nickname against the accounts; letting the guest have it");
                false
            }
        }
    }
}
