//! A fresh database on the private PostgreSQL that `./scripts/test` starts
//! (its admin URL in `CHAT_TEST_POSTGRES_URL`).

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Connection, Executor, PgConnection};

static DATABASES: AtomicU64 = AtomicU64::new(0);

/// The URL of a new, empty database; `None` (the test is skipped, and says
/// so) when no PostgreSQL is configured, unless `CHAT_REQUIRE_POSTGRES` is
/// set, as `./scripts/test` does: then its absence fails the test.
pub async fn fresh_database() -> Option<String> {
    let Ok(admin) = std::env::var("CHAT_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CHAT_REQUIRE_POSTGRES").is_none(),
            "CHAT_REQUIRE_POSTGRES is set but CHAT_TEST_POSTGRES_URL is not"
        );
        eprintln!("skipped: no CHAT_TEST_POSTGRES_URL (./scripts/test starts a private PostgreSQL)");
        return None;
    };
    let name = format!("chat_test_{}_{}", std::process::id(), DATABASES.fetch_add(1, Ordering::Relaxed));
    let mut connection = PgConnection::connect(&admin).await.expect("connects to the test PostgreSQL");
    connection.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("creates a database");
    connection.close().await.expect("closes");
    let (base, query) = admin.split_once('?').map_or((admin.as_str(), None), |(b, q)| (b, Some(q)));
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    Some(match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    })
}
