//! Headless Chromium sessions through a local chromedriver.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// A chromedriver process on a free port, killed when dropped.
pub struct Chromedriver {
    _child: Child,
    url: String,
}

impl Chromedriver {
    /// Starts `chromedriver` from PATH (or `CHROMEDRIVER`) and waits until it answers.
    pub async fn start() -> Self {
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free port").port();
        let program = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let child = Command::new(&program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{program} starts (apt-get install chromium-driver): {e}"));
        crate::eventually("chromedriver to listen", || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
        })
        .await;
        Self { _child: child, url: format!("http://127.0.0.1:{port}") }
    }

    /// Opens a new headless desktop browser with its own profile and window size.
    pub async fn browser(&self, width: u32, height: u32) -> Browser {
        self.open(width, height, false).await
    }

    /// A desktop browser that opened `url` and joined as `nick`.
    pub async fn user(&self, url: &str, nick: &str) -> Browser {
        let browser = self.browser(1280, 800).await;
        browser.goto(url).await;
        browser.join(nick).await;
        browser
    }

    /// Opens a new headless browser emulating a phone screen of this size
    /// (desktop windows cannot be narrower than 500 px).
    pub async fn phone(&self, width: u32, height: u32) -> Browser {
        self.open(width, height, true).await
    }

    async fn open(&self, width: u32, height: u32, phone: bool) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut options = json!({ "args": args });
        if phone {
            options["mobileEmulation"] =
                json!({ "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1, "touch": true } });
        }
        if let Ok(binary) = std::env::var("CHROME_BIN") {
            options["binary"] = json!(binary);
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("browser session starts");
        Browser { client, _profile: profile }
    }
}

/// One message as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The author shown.
    pub nick: String,
    /// The text shown.
    pub text: String,
}

/// One browser session.
pub struct Browser {
    /// The WebDriver client, for anything the helpers do not cover.
    pub client: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Loads `url`.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("page loads");
    }

    /// The value of `data-state` on the status indicator.
    pub async fn connection_state(&self) -> Option<String> {
        let status = self.client.find(Locator::Css("[role=status]")).await.ok()?;
        status.attr("data-state").await.ok().flatten()
    }

    /// Waits until the status indicator says `state`.
    pub async fn wait_for_connection_state(&self, state: &str) {
        crate::eventually(&format!("connection state {state}"), || async {
            (self.connection_state().await.as_deref() == Some(state)).then_some(())
        })
        .await;
    }

    /// Types `nick` into the Nickname field, presses Join and waits until the
    /// member list shows us.
    pub async fn join(&self, nick: &str) {
        self.wait_for_connection_state("connected").await;
        let field = self
            .client
            .wait()
            .at_most(crate::PATIENCE)
            .for_element(Locator::Css("input[aria-label=Nickname]"))
            .await
            .expect("nickname field");
        field.send_keys(nick).await.expect("typed");
        self.button("Join").await.click().await.expect("Join clicked");
        self.wait_until_member(nick).await;
    }

    /// Types `value` into the field labelled `label` (waiting for it), replacing what it held.
    pub async fn fill(&self, label: &str, value: &str) {
        let field = self
            .client
            .wait()
            .at_most(crate::PATIENCE)
            .for_element(Locator::Css(&format!("input[aria-label='{label}']")))
            .await
            .unwrap_or_else(|e| panic!("the {label} field: {e}"));
        field.clear().await.expect("cleared");
        field.send_keys(value).await.expect("typed");
    }

    /// Fills the account form and presses `button` ("Sign in" or "Register").
    pub async fn account_form(&self, username: &str, password: &str, button: &str) {
        self.fill("Username", username).await;
        self.fill("Password", password).await;
        self.button(button).await.click().await.expect("clicked");
    }

    /// Opens `url`, registers the account `name` there (password "correct
    /// horse") and waits until the member list shows it.
    pub async fn register(&self, url: &str, name: &str) {
        self.goto(url).await;
        self.wait_for_connection_state("connected").await;
        self.account_form(name, "correct horse", "Register").await;
        self.wait_until_member(name).await;
    }

    /// Waits until the member list shows `nick`.
    pub async fn wait_until_member(&self, nick: &str) {
        crate::eventually(&format!("{nick} in Members"), || async {
            self.members().await.iter().any(|m| m == nick).then_some(())
        })
        .await;
    }

    /// The names in the member list.
    pub async fn members(&self) -> Vec<String> {
        self.texts("[aria-label=Members] li .nick").await
    }

    /// The join and leave notices in the log.
    pub async fn notices(&self) -> Vec<String> {
        self.texts("[role=log] .notice").await
    }

    /// What the page's alerts say (refusals, errors), run together.
    pub async fn alerts(&self) -> String {
        self.texts("[role=alert]").await.concat()
    }

    /// What the typing indicator says.
    pub async fn typing_line(&self) -> String {
        self.texts(".typing").await.concat()
    }

    /// The text content of every element matching `selector`.
    pub async fn texts(&self, selector: &str) -> Vec<String> {
        let script = "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent.trim());";
        let value = self.client.execute(script, vec![json!(selector)]).await.unwrap_or(Value::Null);
        value
            .as_array()
            .map(|items| items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// Types into the composer without sending.
    pub async fn type_in_composer(&self, text: &str) {
        let composer = self.client.find(Locator::Css("input[aria-label=Message]")).await.expect("composer");
        composer.send_keys(text).await.expect("typed");
    }

    /// The button whose visible name is `name`.
    pub async fn button(&self, name: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::XPath(&format!("//button[normalize-space(.)='{name}']")))
            .await
            .unwrap_or_else(|e| panic!("a {name} button: {e}"))
    }

    /// The button named `name` on the log's message that says `text`, if there is one now.
    pub async fn find_message_button(&self, text: &str, name: &str) -> Option<fantoccini::elements::Element> {
        let path = format!(
            "//li[contains(@class,'message')][.//p[contains(@class,'text') and normalize-space(.)='{text}']]\
             //button[normalize-space(.)='{name}']"
        );
        self.client.find(Locator::XPath(&path)).await.ok()
    }

    /// The button named `name` on the log's message that says `text`.
    pub async fn message_button(&self, text: &str, name: &str) -> fantoccini::elements::Element {
        let found = self.find_message_button(text, name).await;
        found.unwrap_or_else(|| panic!("a {name} button on “{text}”"))
    }

    /// Types `text` into the composer and presses Enter.
    pub async fn send_with_enter(&self, text: &str) {
        let composer = self.client.find(Locator::Css("input[aria-label=Message]")).await.expect("composer");
        composer.send_keys(&format!("{text}\u{E007}")).await.expect("typed and sent");
    }

    /// Types `text` into the composer and clicks Send.
    pub async fn send_with_button(&self, text: &str) {
        let composer = self.client.find(Locator::Css("input[aria-label=Message]")).await.expect("composer");
        composer.send_keys(text).await.expect("typed");
        self.button("Send").await.click().await.expect("Send clicked");
    }

    /// The messages the log shows, oldest first.
    pub async fn log(&self) -> Vec<LogLine> {
        let script = r#"
            return Array.from(document.querySelectorAll('[role=log] .message:not(.pending)')).map(li => [
                li.querySelector('.nick').textContent.trim(),
                li.querySelector('.text').textContent,
            ]);"#;
        let value = self.client.execute(script, vec![]).await.unwrap_or(Value::Null);
        value
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|row| {
                        Some(LogLine { nick: row.get(0)?.as_str()?.to_owned(), text: row.get(1)?.as_str()?.to_owned() })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until the log shows a message with exactly this author and text.
    pub async fn wait_for_message(&self, nick: &str, text: &str) {
        let wanted = LogLine { nick: nick.to_owned(), text: text.to_owned() };
        crate::eventually(&format!("{nick}: {text} in the log"), || async {
            self.log().await.contains(&wanted).then_some(())
        })
        .await;
    }

    /// Saves a PNG screenshot of the page.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.client.screenshot().await.expect("screenshot taken");
        std::fs::write(path, png).expect("screenshot written");
    }

    /// Ends the session and closes the browser.
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.close()).await;
    }
}
