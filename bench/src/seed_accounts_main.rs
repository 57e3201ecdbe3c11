//! `chat-seed-accounts`: creates accounts `member-0` … `member-{N-1}`, each with
//! a signed-in session, in a server's SQLite database (before the server
//! starts on it), and writes their session tokens, one per line, for
//! `chat-load --sessions`.
//!
//! The server's own stores write them (the same schema and migrations). A
//! storm of signed-in clients needs thousands of accounts; registering them
//! over HTTP would cost a password hash each and meet the per-address
//! registration limit, neither of which a reconnect storm is about. All the
//! accounts share one password hash, computed once.

use std::path::PathBuf;
use std::process::ExitCode;

use chat_server::accounts::name_key::name_key;
use chat_server::accounts::password::PasswordHasher;
use chat_server::accounts::session_token;
use chat_server::accounts::sqlite::SqliteAccounts;
use chat_server::accounts::store::AccountStore;
use chat_server::store::HistoryStore;
use chat_server::store::sqlite::SqliteStore;
use clap::Parser;

/// Sessions last this long (a benchmark is over well before).
const SESSION_MS: i64 = 7 * 24 * 3_600_000;

#[derive(Debug, Parser)]
#[command(name = "chat-seed-accounts")]
struct Args {
    /// The server's SQLite database (created and migrated if new).
    #[arg(long)]
    database: PathBuf,
    /// Accounts to create.
    #[arg(long)]
    count: usize,
    /// Where the session tokens go, one per line, `member-0`'s first.
    #[arg(long)]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match seed(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat-seed-accounts: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn seed(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    // Opening the history store applies every migration, the accounts' too.
    SqliteStore::open(&args.database).await?.close().await;
    let accounts = SqliteAccounts::open(&args.database).await?;
    let hash = PasswordHasher::new(1).hash("load-password").await.map_err(|_| "the password hasher is busy")?;
    let now = chat_server::accounts::now_ms();
    let mut tokens = String::new();
    for index in 0..args.count {
        let name = format!("member-{index}");
        let user = accounts.create_user(&name, &name_key(&name), &hash, now).await?.ok_or("the account exists")?;
        let token = session_token::fresh();
        accounts.create_session(&session_token::stored_form(&token), user, now, now + SESSION_MS).await?;
        tokens.push_str(&token);
        tokens.push('\n');
    }
    accounts.close().await;
    std::fs::write(&args.out, tokens)?;
    println!("{} accounts with sessions in {}; tokens in {}", args.count, args.database.display(), args.out.display());
    Ok(())
}
