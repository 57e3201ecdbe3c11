//! What the SQL stores (SQLite and PostgreSQL) share: the `messages` row and
//! its checks, and the page queries, written once with numbered parameters
//! (`?1` in SQLite, `$1` in PostgreSQL).

use chat_shared::{ChatMessage, ClientId, MessageText, Nickname, RoomName};
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{Page, StoreError};

/// The columns of `messages`, in the order every query selects them.
pub(super) const COLUMNS: &str = "room, id, ts, nick, text, client_id, deletes, deleted";

/// An id or timestamp as the databases store it (signed 64-bit).
pub(super) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A stored value that breaks the protocol's rules.
pub(super) fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

/// A row of `messages` as stored, before it is checked.
pub(super) struct StoredRow {
    pub(super) room: String,
    pub(super) id: i64,
    pub(super) ts: i64,
    pub(super) nick: String,
    pub(super) text: String,
    pub(super) client_id: Option<String>,
    pub(super) deletes: Option<i64>,
    pub(super) deleted: bool,
}

impl StoredRow {
    /// The message, if the row still passes the protocol's rules (a row
    /// edited by hand, or written by an older version, may not).
    pub(super) fn into_message(self) -> Result<ChatMessage, StoreError> {
        Ok(ChatMessage {
            room: RoomName::parse(self.room).map_err(corrupt)?,
            id: u64::try_from(self.id).map_err(corrupt)?,
            ts: u64::try_from(self.ts).map_err(corrupt)?,
            nick: Nickname::parse(self.nick).map_err(corrupt)?,
            text: MessageText::parse(self.text).map_err(corrupt)?,
            client_id: self.client_id.map(ClientId::parse).transpose().map_err(corrupt)?,
            deletes: self.deletes.map(u64::try_from).transpose().map_err(corrupt)?,
            deleted: self.deleted,
        })
    }
}

/// A message from a row of [`COLUMNS`], whichever database read it.
pub(super) fn message_from_row<'r, R>(row: &'r R) -> Result<ChatMessage, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    StoredRow {
        room: row.try_get("room")?,
        id: row.try_get("id")?,
        ts: row.try_get("ts")?,
        nick: row.try_get("nick")?,
        text: row.try_get("text")?,
        client_id: row.try_get("client_id")?,
        deletes: row.try_get("deletes")?,
        deleted: row.try_get("deleted")?,
    }
    .into_message()
}

/// A page query: its SQL (parameters `{p}1` room, `{p}2` limit, `{p}3` the
/// id bound, if the page has one, where `p` is the database's parameter
/// sign), and the values of the limit and the id.
pub(super) fn page_query(page: Page, p: char) -> (String, u32, Option<u64>) {
    let (condition, order, limit, bound) = match page {
        Page::Latest { limit } => ("", "DESC", limit, None),
        Page::Before { id, limit } => (" AND id < {p}3", "DESC", limit, Some(id)),
        Page::After { id, limit } => (" AND id > {p}3", "ASC", limit, Some(id)),
    };
    let condition = condition.replace("{p}", &p.to_string());
    (
        format!("SELECT {COLUMNS} FROM messages WHERE room = {p}1{condition} ORDER BY id {order} LIMIT {p}2"),
        limit,
        bound,
    )
}

/// A page's messages oldest first (the newest-first reads are reversed).
pub(super) fn oldest_first(mut messages: Vec<ChatMessage>, page: Page) -> Vec<ChatMessage> {
    if !matches!(page, Page::After { .. }) {
        messages.reverse();
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_queries_number_their_parameters_for_either_database() {
        let (sql, limit, bound) = page_query(Page::Before { id: 9, limit: 5 }, '$');
        assert_eq!(
            sql,
            format!("SELECT {COLUMNS} FROM messages WHERE room = $1 AND id < $3 ORDER BY id DESC LIMIT $2")
        );
        assert_eq!((limit, bound), (5, Some(9)));
        let (sql, _, bound) = page_query(Page::Latest { limit: 50 }, '?');
        assert_eq!(sql, format!("SELECT {COLUMNS} FROM messages WHERE room = ?1 ORDER BY id DESC LIMIT ?2"));
        assert_eq!(bound, None);
    }
}
