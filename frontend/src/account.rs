//! The account API, as the page calls it: who is signed in, registering,
//! signing in and out. Same-origin `fetch`, so the session cookie goes with
//! every call (and with the socket's upgrade); the page never sees the
//! token (the cookie is `HttpOnly`).

use chat_shared::api::Credentials;
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, Response};

/// An answer: its status and body.
pub(crate) struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body, read by hand rather than through the API types' derived
    /// decoders (which would cost the bundle several KB for a few fields).
    pub(crate) fn body(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }

    /// The text at `pointer` (`/error/message`) of a successful answer.
    pub(crate) fn text(&self, pointer: &str) -> Result<String, String> {
        let body = self.body();
        match body.pointer(pointer).and_then(Value::as_str) {
            Some(text) if self.ok() => Ok(text.to_owned()),
            _ => Err(self.refusal()),
        }
    }

    /// What to tell the user about a refusal (an [`chat_shared::api::ApiError`]).
    pub(crate) fn refusal(&self) -> String {
        match self.body().pointer("/error/message").and_then(Value::as_str) {
            Some(message) => message.to_owned(),
            None => format!("the server answered {}", self.status),
        }
    }

    /// The username of a successful answer's [`chat_shared::api::Me`].
    fn me(&self) -> Result<String, String> {
        self.text("/username")
    }
}

/// What to tell the user when the server cannot be reached.
const UNREACHABLE: &str = "the server cannot be reached; try again";

/// One same-origin `fetch` (through web-sys rather than gloo-net's http
/// module, which cost the bundle 12 KB gzip), with a JSON body if any.
pub(crate) async fn call(method: &str, path: &str, body: Option<String>) -> Result<Answer, String> {
    let sent = async {
        let init = RequestInit::new();
        init.set_method(method);
        if let Some(body) = body {
            let headers = Headers::new()?;
            headers.set("content-type", "application/json")?;
            init.set_headers(&headers);
            init.set_body(&JsValue::from_str(&body));
        }
        let request = Request::new_with_str_and_init(path, &init)?;
        let window = web_sys::window().ok_or_else(|| JsValue::from_str("no window"))?;
        let response: Response = JsFuture::from(window.fetch_with_request(&request)).await?.dyn_into()?;
        let body = JsFuture::from(response.text()?).await?.as_string().unwrap_or_default();
        Ok::<_, JsValue>(Answer { status: response.status(), body })
    };
    sent.await.map_err(|_| UNREACHABLE.to_owned())
}

/// Register a new account, or sign in to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// `POST /api/register`.
    Register,
    /// `POST /api/login`.
    SignIn,
}

/// The signed-in account's name; `None` for a guest.
pub async fn current() -> Result<Option<String>, String> {
    let answer = call("GET", "/api/me", None).await?;
    match answer.status {
        200 => answer.me().map(Some),
        401 => Ok(None),
        _ => Err(answer.refusal()),
    }
}

/// Registers or signs in; the account's name as the server spells it.
pub async fn enter(entry: Entry, username: String, password: String) -> Result<String, String> {
    let path = match entry {
        Entry::Register => "/api/register",
        Entry::SignIn => "/api/login",
    };
    let body = serde_json::to_string(&Credentials { username, password }).ok();
    let answer = call("POST", path, body).await?;
    if answer.ok() { answer.me() } else { Err(answer.refusal()) }
}

/// Signs this browser out, or (`everywhere`) every session of the account.
pub async fn sign_out(everywhere: bool) -> Result<(), String> {
    let path = if everywhere { "/api/logout-all" } else { "/api/logout" };
    let answer = call("POST", path, None).await?;
    if answer.ok() { Ok(()) } else { Err(answer.refusal()) }
}
