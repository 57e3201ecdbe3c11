//! The payload of every published message: who sent it, its number, and when
//! (nanoseconds since the run started), padded to the payload size. Plain
//! ASCII, so it is valid chat text too.

/// A decoded stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Publisher index.
    pub publisher: u32,
    /// Message number of that publisher.
    pub seq: u64,
    /// Send time, ns since the run's start.
    pub sent_ns: u64,
}

/// Encodes a stamp padded with `x` to `size` bytes (longer if the stamp needs it).
pub fn encode(stamp: Stamp, size: usize) -> String {
    let mut text = format!("{}:{}:{}:", stamp.publisher, stamp.seq, stamp.sent_ns);
    while text.len() < size {
        text.push('x');
    }
    text
}

/// Decodes the stamp at the start of `text`.
pub fn decode(text: &str) -> Option<Stamp> {
    let mut parts = text.splitn(4, ':');
    Some(Stamp {
        publisher: parts.next()?.parse().ok()?,
        seq: parts.next()?.parse().ok()?,
        sent_ns: parts.next()?.parse().ok()?,
    })
}

/// Finds the stamp in a JSON `message` event without parsing the whole event
/// (the load tool shares the machine with the server, so it stays cheap).
pub fn from_json_event(frame: &str) -> Option<Stamp> {
    if !frame.starts_with("{\"type\":\"message\"") {
        return None;
    }
    let start = frame.find("\"text\":\"")? + "\"text\":\"".len();
    decode(&frame[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_pads() {
        let stamp = Stamp { publisher: 3, seq: 42, sent_ns: 123_456_789 };
        let text = encode(stamp, 64);
        assert_eq!(text.len(), 64);
        assert_eq!(decode(&text), Some(stamp));
    }

    #[test]
    fn finds_the_stamp_in_a_json_event() {
        let stamp = Stamp { publisher: 1, seq: 2, sent_ns: 3 };
        let event = format!(
            "{{\"type\":\"message\",\"room\":\"bench\",\"id\":9,\"ts\":1,\"nick\":\"p1\",\"text\":\"{}\",\"client_id\":\"c\"}}",
            encode(stamp, 20)
        );
        assert_eq!(from_json_event(&event), Some(stamp));
        assert_eq!(from_json_event("{\"type\":\"ack\"}"), None);
    }
}
