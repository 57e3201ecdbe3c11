//! Where the history lives, as `--database` says: a SQLite file (the
//! default: nothing to install) or a PostgreSQL server (`postgres://...`,
//! for several nodes sharing one history).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A history store's address.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A SQLite file, created (with its folder) on first start.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://user:password@host/db`).
    Postgres(String),
}

impl StoreLocation {
    /// The SQLite file, if that is where the history lives.
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match self {
            Self::Sqlite(path) => Some(path),
            Self::Postgres(_) => None,
        }
    }
}

impl FromStr for StoreLocation {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let is_url = ["postgres://", "postgresql://"].iter().any(|scheme| value.starts_with(scheme));
        Ok(if is_url { Self::Postgres(value.to_owned()) } else { Self::Sqlite(PathBuf::from(value)) })
    }
}

impl From<PathBuf> for StoreLocation {
    fn from(path: PathBuf) -> Self {
        Self::Sqlite(path)
    }
}

impl From<&std::path::Path> for StoreLocation {
    fn from(path: &std::path::Path) -> Self {
        Self::Sqlite(path.to_owned())
    }
}

/// Shown in logs: a URL's password is left out.
impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => f.write_str(&redacted(url)),
        }
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// `url` with the password of its user info (if any) replaced by `***`.
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or(user_info, |(user, _)| user);
            let hidden = if user_info.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

impl Serialize for StoreLocation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Sqlite(path) => path.serialize(serializer),
            Self::Postgres(url) => serializer.serialize_str(url),
        }
    }
}

impl<'de> Deserialize<'de> for StoreLocation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Ok(value.parse().unwrap_or_else(|never: std::convert::Infallible| match never {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> StoreLocation {
        value.parse().unwrap_or_else(|never: std::convert::Infallible| match never {})
    }

    #[test]
    fn a_postgres_url_is_a_server_anything_else_a_file() {
        assert_eq!(parse("data/chat.sqlite3"), StoreLocation::Sqlite("data/chat.sqlite3".into()));
        assert_eq!(parse("postgres://chat@db/chat"), StoreLocation::Postgres("postgres://chat@db/chat".into()));
        assert!(matches!(parse("postgresql://db/chat"), StoreLocation::Postgres(_)));
        assert!(matches!(parse("./postgres:/odd"), StoreLocation::Sqlite(_)));
    }

    #[test]
    fn logs_never_show_the_password() {
        let shown = parse("postgres://chat:s3cret@db.example:5432/chat?sslmode=require").to_string();
        assert_eq!(shown, "postgres://chat:***@db.example:5432/chat?sslmode=require");
        assert!(!format!("{:?}", parse("postgres://u:p%40ss@h/db")).contains("p%40ss"));
        assert_eq!(parse("postgres://chat@db/chat").to_string(), "postgres://chat@db/chat");
        assert_eq!(parse("postgres:///chat?host=/run/postgresql").to_string(), "postgres:///chat?host=/run/postgresql");
    }
}
