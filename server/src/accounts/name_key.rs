//! The key names are compared by: NFKC-normalised and lower-cased, so
//! `Alice`, `ALICE` and `Ａlice` (a full-width A) are one name, and nobody
//! can take a registered user's name by changing its case or its look.

use unicode_normalization::UnicodeNormalization;

/// The comparison key of `name`.
pub fn name_key(name: &str) -> String {
    // Lower-casing can produce characters NFKC would change again.
    let lowered: String = name.nfkc().collect::<String>().to_lowercase();
    lowered.nfkc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_look_alike_share_a_key() {
        assert_eq!(name_key("Alice"), name_key("alice"));
        assert_eq!(name_key("ALICE"), "alice");
        assert_eq!(name_key("Ａlice"), "alice", "full-width A");
        assert_eq!(name_key("ﬁona"), "fiona", "the fi ligature");
        assert_eq!(name_key("Ǆemal"), name_key("džemal"));
        assert_ne!(name_key("alice"), name_key("alicé"));
    }
}
