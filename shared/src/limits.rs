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

/// The path of the typed JSON protocol.
pub const JSON_SOCKET_PATH: &str = "/ws";
