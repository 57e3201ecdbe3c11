//! Finds http(s) URLs in message text so they can be rendered as links,
//! while everything else stays plain text.

/// A piece of message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Plain text.
    Text(&'a str),
    /// An `http://` or `https://` URL.
    Link(&'a str),
}

/// Characters that end a sentence rather than a URL when they trail it.
const TRAILING: &[char] = &['.', ',', ';', ':', '!', '?', ')', ']', '}', '\'', '"', '>'];

/// Splits `text` into plain text and URLs, in order.
pub fn segments(text: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut plain_start = 0;
    let mut cursor = 0;
    while let Some(found) = find_url_start(&text[cursor..]) {
        let start = cursor + found;
        let end = text[start..].find(char::is_whitespace).map_or(text.len(), |len| start + len);
        let url = text[start..end].trim_end_matches(TRAILING);
        let end = start + url.len();
        if url.len() > "https://".len() {
            if plain_start < start {
                out.push(Segment::Text(&text[plain_start..start]));
            }
            out.push(Segment::Link(url));
            plain_start = end;
        }
        cursor = end.max(start + 1);
    }
    if plain_start < text.len() {
        out.push(Segment::Text(&text[plain_start..]));
    }
    out
}

/// Where the next URL starts: `http://` or `https://` at a word boundary.
fn find_url_start(text: &str) -> Option<usize> {
    let mut offset = 0;
    loop {
        let rest = &text[offset..];
        let at = rest.find("http")?;
        let index = offset + at;
        let tail = &text[index..];
        let boundary = text[..index].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
        if boundary && (tail.starts_with("http://") || tail.starts_with("https://")) {
            return Some(index);
        }
        offset = index + 4;
    }
}

#[cfg(test)]
mod tests {
    use super::Segment::{Link, Text};
    use super::segments;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn plain_text_stays_text() {
        assert_eq!(segments("no links here"), [Text("no links here")]);
        assert_eq!(segments(""), []);
    }

    #[test]
    fn urls_become_links_without_trailing_punctuation() {
        assert_eq!(
            segments("see https://example.org/a?b=1, then (http://x.io)."),
            [Text("see "), Link("https://example.org/a?b=1"), Text(", then ("), Link("http://x.io"), Text(").")]
        );
    }

    #[test]
    fn only_http_schemes_at_word_starts() {
        assert_eq!(
            segments("javascript:alert(1) xhttps://a.b https://"),
            [Text("javascript:alert(1) xhttps://a.b https://")]
        );
        assert_eq!(segments("https://a.b"), [Link("https://a.b")]);
    }
}
