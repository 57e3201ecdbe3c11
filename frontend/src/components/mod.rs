//! The pieces of the page, each a small function component.

pub mod composer;
pub mod message_log;
pub mod nickname_form;
pub mod status_bar;

pub use composer::Composer;
pub use message_log::MessageLog;
pub use nickname_form::NicknameForm;
pub use status_bar::StatusBar;

use web_sys::HtmlInputElement;
use yew::NodeRef;

/// The current value of the input behind `node`, or empty if it is not mounted.
fn input_value(node: &NodeRef) -> String {
    node.cast::<HtmlInputElement>().map(|input| input.value()).unwrap_or_default()
}
