//! Entry point of the web client: mounts [`chat_frontend::App`] on the page body.

/// Talc instead of Rust's default dlmalloc: about 2.5 KB less gzip in the
/// bundle, which is most of the page's weight.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
// SAFETY: `new_global` is sound only as the global allocator of a
// single-threaded wasm32 module, which is exactly this use.
static ALLOCATOR: talc::TalckWasm = unsafe { talc::TalckWasm::new_global() };

fn main() {
    yew::Renderer::<chat_frontend::App>::new().render();
}
