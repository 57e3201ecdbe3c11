//! The conversions every validated string type shares, written once.

/// Implements, for a `struct $name(String)` with an associated
/// `fn parse(impl Into<String>) -> Result<Self, $error>`: `as_str`,
/// `TryFrom<String>` (what serde deserializes through), `From<$name> for
/// String` (what it serializes through) and `Display`.
macro_rules! validated_string {
    ($name:ident, $error:ty) => {
        impl $name {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $error;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

pub(crate) use validated_string;

/// Whether `value` is a token: 1 to `max` ASCII letters, digits, `-` or `_`
/// (client ids, tab secrets, epochs).
pub(crate) fn is_token(value: &str, max: usize) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    !value.is_empty() && value.len() <= max && value.chars().all(allowed)
}
