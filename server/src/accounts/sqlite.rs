//! Accounts in the SQLite file of the history (one process): a small pool
//! of its own beside the history's writer (account writes are rare, and
//! wait their turn for the file's write lock).

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use super::store::{AccountStore, SessionUser, StoredUser, UserId, is_unique_violation};
use crate::store::StoreError;

/// Accounts in a SQLite file whose schema the history store brought up to date.
pub struct SqliteAccounts {
    pool: SqlitePool,
}

impl SqliteAccounts {
    /// Opens the (already migrated) database at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new().max_connections(2).connect_with(options).await?;
        Ok(Self { pool })
    }
}

impl SqliteAccounts {
    /// Its pool, which the created rooms' store shares (closing one closes both).
    pub fn pool(&self) -> SqlitePool {
        self.pool.clone()
    }
}

#[async_trait]
impl AccountStore for SqliteAccounts {
    async fn create_user(
        &self,
        name: &str,
        name_key: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<Option<UserId>, StoreError> {
        let inserted = sqlx::query_scalar(
            "INSERT INTO users (name, name_key, password_hash, created_ms) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(name)
        .bind(name_key)
        .bind(password_hash)
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await;
        match inserted {
            Ok(id) => Ok(Some(id)),
            Err(error) if is_unique_violation(&error) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    async fn user_by_key(&self, name_key: &str) -> Result<Option<StoredUser>, StoreError> {
        let row: Option<(i64, String, String)> =
            sqlx::query_as("SELECT id, name, password_hash FROM users WHERE name_key = ?")
                .bind(name_key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id, name, password_hash)| StoredUser { id, name, password_hash }))
    }

    async fn create_session(
        &self,
        token_hash: &str,
        user: UserId,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms) VALUES (?, ?, ?, ?)")
            .bind(token_hash)
            .bind(user)
            .bind(now_ms)
            .bind(expires_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn session_user(&self, token_hash: &str, now_ms: i64) -> Result<Option<SessionUser>, StoreError> {
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT users.id, users.name FROM sessions JOIN users ON users.id = sessions.user_id \
             WHERE sessions.token_hash = ? AND sessions.expires_ms > ?",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id, name)| SessionUser { id, name }))
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?").bind(token_hash).execute(&self.pool).await?;
        Ok(())
    }

    async fn delete_sessions_of(&self, user: UserId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE user_id = ?").bind(user).execute(&self.pool).await?;
        Ok(())
    }

    async fn with_sessions(&self, users: &[UserId], now_ms: i64) -> Result<HashSet<UserId>, StoreError> {
        // SQLite has no arrays: the ids go as one JSON array.
        let ids = serde_json::to_string(users).map_err(StoreError::database)?;
        let rows: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT user_id FROM sessions WHERE user_id IN (SELECT value FROM json_each(?)) AND expires_ms > ?",
        )
        .bind(ids)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
