//! Accounts in the PostgreSQL database of the history (several nodes): a
//! small pool of its own, with the history's timeouts.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::store::{AccountStore, SessionUser, StoredUser, UserId, is_unique_violation};
use crate::store::StoreError;

/// Accounts in a PostgreSQL database whose schema the history store brought up to date.
pub struct PostgresAccounts {
    pool: PgPool,
}

impl PostgresAccounts {
    /// Connects to `url` (already migrated).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(2))
            .connect_with(options.options([("statement_timeout", "10s")]))
            .await?;
        Ok(Self { pool })
    }
}

impl PostgresAccounts {
    /// Its pool, which the created rooms' store shares (closing one closes both).
    pub fn pool(&self) -> PgPool {
        self.pool.clone()
    }
}

#[async_trait]
impl AccountStore for PostgresAccounts {
    async fn create_user(
        &self,
        name: &str,
        name_key: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<Option<UserId>, StoreError> {
        let inserted = sqlx::query_scalar(
            "INSERT INTO users (name, name_key, password_hash, created_ms) VALUES ($1, $2, $3, $4) RETURNING id",
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
            sqlx::query_as("SELECT id, name, password_hash FROM users WHERE name_key = $1")
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
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms) VALUES ($1, $2, $3, $4)")
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
             WHERE sessions.token_hash = $1 AND sessions.expires_ms > $2",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id, name)| SessionUser { id, name }))
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(&self.pool).await?;
        Ok(())
    }

    async fn delete_sessions_of(&self, user: UserId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user).execute(&self.pool).await?;
        Ok(())
    }

    async fn with_sessions(&self, users: &[UserId], now_ms: i64) -> Result<HashSet<UserId>, StoreError> {
        let rows: Vec<i64> =
            sqlx::query_scalar("SELECT DISTINCT user_id FROM sessions WHERE user_id = ANY($1) AND expires_ms > $2")
                .bind(users)
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().collect())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
