//! `chat-server admin grant NAME`: makes a registered account a server
//! administrator, durably (`--admin NAME` does it for one run). It opens the
//! database the server uses (bringing its schema up to date first); a
//! running server sees the grant at its next check of that account.

use clap::{Parser, Subcommand};

use crate::accounts::name_key::name_key;
use crate::metrics::Metrics;
use crate::policy::now_ms;
use crate::startup::{Stores, open_store};
use crate::store::StoreError;
use crate::store::location::StoreLocation;
use crate::store::sqlite::Durability;

/// Administers the server's accounts.
#[derive(Debug, Parser)]
#[command(name = "chat-server admin", about = "Administer the server's accounts.")]
pub struct AdminCommand {
    /// What to do.
    #[command(subcommand)]
    pub action: AdminAction,
}

/// What `chat-server admin` does.
#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Make a registered account a server administrator: it moderates every room.
    Grant {
        /// The account's name (any case or look-alike form).
        name: String,
        /// The database, as the server's `--database`.
        #[arg(long, env = "CHAT_DATABASE", default_value = "data/chat.sqlite3")]
        database: StoreLocation,
    },
}

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such account.
    #[error("no account is named “{0}”; register it first")]
    NoSuchAccount(String),
}

impl AdminCommand {
    /// Runs the command; what to print.
    pub async fn run(self) -> Result<String, AdminError> {
        let AdminAction::Grant { name, database } = self.action;
        let Stores { store, accounts, rooms } = open_store(&database, Durability::Full, &Metrics::new()).await?;
        let granted = async {
            let user = accounts.user_by_key(&name_key(&name)).await?.ok_or_else(|| AdminError::NoSuchAccount(name))?;
            rooms.grant_admin(user.id, now_ms()).await?;
            Ok::<_, AdminError>(format!("{} is a server administrator", user.name))
        }
        .await;
        // In order, as the server closes them (see `AccountStore::close`).
        accounts.close().await;
        store.close().await;
        granted
    }
}
