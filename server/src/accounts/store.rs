//! Where accounts and sessions are kept: the same database as the history
//! (SQLite or PostgreSQL), behind a trait.

use std::collections::HashSet;

use async_trait::async_trait;

use crate::store::StoreError;

/// An account's id.
pub type UserId = i64;

/// An account as stored.
#[derive(Debug, Clone)]
pub struct StoredUser {
    /// Its id.
    pub id: UserId,
    /// Its name, as registered.
    pub name: String,
    /// The argon2id PHC string of its password.
    pub password_hash: String,
}

/// A signed-in session's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    /// The account's id.
    pub id: UserId,
    /// Its name, as registered.
    pub name: String,
}

/// Accounts and their sessions, durably.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Creates an account; `None` if an account with that `name_key` exists.
    async fn create_user(
        &self,
        name: &str,
        name_key: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<Option<UserId>, StoreError>;

    /// The account whose name has this key.
    async fn user_by_key(&self, name_key: &str) -> Result<Option<StoredUser>, StoreError>;

    /// Records a session of `user`, known by the hash of its token.
    async fn create_session(
        &self,
        token_hash: &str,
        user: UserId,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<(), StoreError>;

    /// The account of an unexpired session.
    async fn session_user(&self, token_hash: &str, now_ms: i64) -> Result<Option<SessionUser>, StoreError>;

    /// Ends one session.
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;

    /// Ends every session of `user`.
    async fn delete_sessions_of(&self, user: UserId) -> Result<(), StoreError>;

    /// Which of `users` have an unexpired session.
    async fn with_sessions(&self, users: &[UserId], now_ms: i64) -> Result<HashSet<UserId>, StoreError>;

    /// Closes the connections, at shutdown. On SQLite this must come before
    /// the history's own close: the last connection to leave folds the
    /// write-ahead log into the main file, so that a copy of that file alone
    /// is a whole backup.
    async fn close(&self);
}

/// Whether `error` is a unique-constraint violation (the name was taken
/// between the check and the insert, on this node or another).
pub(super) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database) if database.is_unique_violation())
}
