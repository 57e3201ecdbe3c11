//! The account API, as the page calls it: who is signed in, registering,
//! signing in and out. Same-origin `fetch`, so the session cookie goes with
//! every call (and with the socket's upgrade); the page never sees the
//! token (the cookie is `HttpOnly`).

use chat_shared::api::{ApiError, Credentials, Me};
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, Response};

/// An answer: its status and body.
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn json<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(&self.body).ok()
    }

    /// What to tell the user about a refusal.
    fn refusal(&self) -> String {
        match self.json::<ApiError>() {
            Some(refused) => refused.error.message,
            None => format!("the server answered {}", self.status),
        }
    }

    /// The `Me` of a successful answer.
    fn me(&self) -> Result<String, String> {
        self.json::<Me>().map(|me| me.username).ok_or_else(|| format!("the server answered {}", self.status))
    }
}

/// What to tell the user when the server cannot be reached.
const UNREACHABLE: &str = "the server cannot be reached; try again";

/// One same-origin `fetch` (through web-sys rather than gloo-net's http
/// module, which cost the bundle 12 KB gzip), with a JSON body if any.
async fn call(method: &str, path: &str, body: Option<String>) -> Result<Answer, String> {
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
    let body = serde_json::to_string(&Credentials { username, password }).map_err(|e| e.to_string())?;
    let answer = call("POST", path, Some(body)).await?;
    if answer.ok() { answer.me() } else { Err(answer.refusal()) }
}

/// Signs this browser out, or (`everywhere`) every session of the account.
pub async fn sign_out(everywhere: bool) -> Result<(), String> {
    let path = if everywhere { "/api/logout-all" } else { "/api/logout" };
    let answer = call("POST", path, None).await?;
    if answer.ok() { Ok(()) } else { Err(answer.refusal()) }
}
