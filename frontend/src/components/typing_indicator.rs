//! "alice is typing…": who is typing in the room, gone when they stop.

use chat_shared::Nickname;
use yew::prelude::*;

/// Props of [`TypingIndicator`].
#[derive(Properties, PartialEq)]
pub struct TypingIndicatorProps {
    /// Who is typing now.
    pub names: Vec<Nickname>,
}

/// The sentence for a list of typists.
pub fn describe(names: &[Nickname]) -> String {
    match names {
        [] => String::new(),
        [one] => format!("{one} is typing…"),
        [one, two] => format!("{one} and {two} are typing…"),
        [one, two, rest @ ..] => format!("{one}, {two} and {} more are typing…", rest.len()),
    }
}

/// The typing line; always present so its appearance does not shift the layout.
#[function_component]
pub fn TypingIndicator(props: &TypingIndicatorProps) -> Html {
    html! { <p class="typing" aria-live="polite">{ describe(&props.names) }</p> }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn sentences() {
        let n = |s: &str| Nickname::parse(s).expect("nick");
        assert_eq!(describe(&[]), "");
        assert_eq!(describe(&[n("alice")]), "alice is typing…");
        assert_eq!(describe(&[n("a"), n("b")]), "a and b are typing…");
        assert_eq!(describe(&[n("a"), n("b"), n("c"), n("d")]), "a, b and 2 more are typing…");
    }
}
