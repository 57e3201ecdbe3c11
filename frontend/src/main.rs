//! Entry point of the web client: mounts [`chat_frontend::App`] on the page body.

fn main() {
    yew::Renderer::<chat_frontend::App>::new().render();
}
