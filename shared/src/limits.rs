//! Size limits of the wire protocol, shared so the client can refuse early what
//! the server would refuse anyway.

/// Longest nickname, in Unicode scalar values.
pub const NICKNAME_MAX_CHARS: usize = 32;

/// Longest message text, in Unicode scalar values.
pub const MESSAGE_TEXT_MAX_CHARS: usize = 4_000;

/// Largest WebSocket frame (and reassembled message) the server accepts, in bytes.
///
/// A maximal message text of 4-byte characters plus its JSON envelope fits well
/// below this.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Longest room name, in characters.
pub const ROOM_NAME_MAX_CHARS: usize = 32;

/// Longest client-made id, in bytes.
pub const CLIENT_ID_MAX_CHARS: usize = 64;

/// How many messages a client receives on entering a room.
pub const HISTORY_PAGE: u32 = 50;

/// Most messages one `history` or `history_after` request may ask for.
pub const HISTORY_PAGE_MAX: u32 = 200;

/// Most bytes of messages in one history page: a page of large messages holds
/// fewer than its `limit` (and says there is more), so every page fits a
/// client's outbound queue however large the messages are.
pub const HISTORY_PAGE_MAX_BYTES: usize = 256 * 1024;

/// Furthest behind a client may be and still resume by paging forward. A
/// client further behind than this (more than its log keeps anyway) gets the
/// latest page and a fresh log, and reaches what it missed by scrolling up.
pub const RESUME_MAX: u64 = 2_000;

/// A client sends `typing` at most this often while the user types.
pub const TYPING_SEND_INTERVAL_MS: u64 = 2_000;

/// A typing indicator disappears this long after the last `typing` event.
pub const TYPING_EXPIRY_MS: u64 = 5_000;

/// Rooms with more members than this get no per-member join/leave or typing
/// events, and `joined` lists only this many names: those events would cost
/// O(members²) while a room fills (a crowd rejoining after a restart) and
/// O(members) per keystroke burst, and nobody reads a list of thousands.
/// The room list still counts everyone. (Discord's "large" guilds start
/// between 50 and 250 members, for the same reason.)
pub const PRESENCE_EVENTS_MAX: usize = 100;

/// The close code of a connection whose token expired without a `refresh`
/// (RFC 6455 leaves 4000–4999 to applications). Reconnect with a new token.
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;

/// The close code of a connection whose token was refused (forged, not for
/// this server, malformed); an `error` with code `token_invalid` says why.
pub const CLOSE_TOKEN_REFUSED: u16 = 4003;
