//! Real-browser tests: headless Chromium driven through WebDriver (Debian's `chromedriver`)
//! against `BASE_URL`, with users and clients made through the admin API by the black-box
//! suite's helpers. Each test starts its own chromedriver (and so its own browser profile) on
//! a free port, and relying parties are tiny HTTP listeners on loopback that record what the
//! browser brings them.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

pub use edgeid_suite as suite;
pub use fantoccini;

/// How long a wait for the browser (a navigation, an element, a callback) may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// Chromium flags that work on this kind of machine: headless, no sandbox (tests run as
/// root), and no background traffic to hosts the closed network refuses.
const CHROME_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1024,768",
];

/// What kind of browser a test wants.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// JavaScript on (the default) or blocked by policy, as a user or an enterprise may set.
    pub javascript: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { javascript: true }
    }
}

/// A headless Chromium session with its own chromedriver. The driver (and the browser it
/// started) run in their own process group, killed on drop even when a test panics.
pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Browser {
    pub async fn start() -> Browser {
        Browser::with(Options::default()).await
    }

    pub async fn with(opts: Options) -> Browser {
        let port = free_port();
        let mut cmd = Command::new(chromedriver());
        cmd.arg(format!("--port={port}"));
        // CHROMEDRIVER_LOG=DIR keeps a verbose driver log per session, for debugging.
        if let Ok(dir) = std::env::var("CHROMEDRIVER_LOG") {
            cmd.arg(format!("--log-path={dir}/chromedriver-{port}.log"))
                .arg("--verbose");
        }
        let driver = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts (apt-get install chromium chromium-driver)");
        let mut guard = DriverGuard(Some(driver));
        let mut prefs = serde_json::Map::new();
        if !opts.javascript {
            prefs.insert(
                "profile.managed_default_content_settings.javascript".into(),
                json!(2),
            );
        }
        let mut chrome = json!({ "args": CHROME_ARGS, "prefs": prefs });
        if let Some(bin) = chromium() {
            chrome["binary"] = json!(bin);
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), chrome);
        caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no WebDriver session from chromedriver on {url}: {e}"),
            }
        };
        Browser {
            client,
            driver: guard.0.take().expect("the driver is still ours"),
        }
    }

    /// Navigates to a path under `BASE_URL` or an absolute URL.
    pub async fn goto(&self, path_or_url: &str) {
        let url = suite::resolve(path_or_url);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("navigating to {url}: {e}"));
    }

    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("the current URL")
            .to_string()
    }

    pub async fn title(&self) -> String {
        self.client.title().await.expect("the page title")
    }

    /// The first element matching a CSS selector, waiting for it to appear.
    pub async fn css(&self, selector: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.client.find(Locator::Css(selector)).await {
                Ok(e) => return e,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!(
                    "no element {selector:?} on {} ({e}); page:\n{}",
                    self.url().await,
                    self.client.source().await.unwrap_or_default()
                ),
            }
        }
    }

    pub async fn has(&self, selector: &str) -> bool {
        self.client
            .find_all(Locator::Css(selector))
            .await
            .is_ok_and(|v| !v.is_empty())
    }

    /// The visible text of the page's `<body>`.
    pub async fn text(&self) -> String {
        self.css("body").await.text().await.unwrap_or_default()
    }

    /// Runs a script and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script {script:?}: {e}"))
    }

    /// Waits until the current URL satisfies `pred`; returns it.
    pub async fn wait_url(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.url().await;
            if pred(&url) {
                return url;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the browser never reached {what}; it is at {url}:\n{}",
                    self.text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for a page whose title starts with `prefix` (titles are "Page · Instance").
    pub async fn wait_title(&self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let title = self.title().await;
            if title.starts_with(prefix) {
                return title;
            }
            if Instant::now() >= deadline {
                panic!(
                    "expected a page titled {prefix:?}, got {title:?} at {}:\n{}",
                    self.url().await,
                    self.text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The browser's console and network log since the last call (chromedriver's `se/log`
    /// with `goog:loggingPrefs` browser=ALL).
    pub async fn console(&self) -> Vec<LogEntry> {
        let v = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("chromedriver returns the browser log");
        serde_json::from_value(v).expect("log entries")
    }

    /// Signs in on the login page the browser shows: types the identifier and password and
    /// submits with the button, as a person would.
    pub async fn sign_in(&self, identifier: &str, password: &str) {
        self.wait_title("Sign in").await;
        self.css("#identifier")
            .await
            .send_keys(identifier)
            .await
            .expect("typing");
        self.css("#password")
            .await
            .send_keys(password)
            .await
            .expect("typing");
        self.css("form[action='/login'] button[type=submit]")
            .await
            .click()
            .await
            .expect("clicking Sign in");
    }

    /// Saves a PNG of the window as `<name>.png` in `$EDGEID_SCREENSHOTS` when that is set
    /// (`cargo xtask screenshots` sets it to `docs/screenshots`); otherwise does nothing.
    pub async fn screenshot(&self, name: &str) {
        let Ok(dir) = std::env::var("EDGEID_SCREENSHOTS") else {
            return;
        };
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::create_dir_all(&dir).expect("the screenshot folder");
        std::fs::write(format!("{dir}/{name}.png"), png).expect("writing the screenshot");
    }

    /// The browser's cookies for the current page's host.
    pub async fn cookies(&self) -> Vec<fantoccini::cookies::Cookie<'static>> {
        self.client.get_all_cookies().await.expect("the cookies")
    }

    /// Ends the WebDriver session (closing the browser) and the driver.
    pub async fn quit(mut self) {
        let _ = self.client.clone().close().await;
        kill_group(&mut self.driver);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            kill_group(c);
        }
    }
}

/// Kills chromedriver and the browser it started (same process group).
fn kill_group(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(child),
            rustix::process::Signal::KILL,
        );
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// One browser log entry.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct LogEntry {
    pub level: String,
    pub message: String,
    #[serde(default)]
    pub source: String,
}

#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

fn chromedriver() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into())
}

/// Debian installs the browser as `/usr/bin/chromium`; chromedriver looks for `chrome`.
fn chromium() -> Option<String> {
    std::env::var("CHROMIUM").ok().or_else(|| {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .iter()
            .find(|p| std::path::Path::new(p).exists())
            .map(|p| (*p).to_owned())
    })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

// ---------------------------------------------------------------------------------------------
// The relying party's side

/// One request the browser brought to a [`RelyingParty`].
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// The `application/x-www-form-urlencoded` body, parsed.
    pub form: BTreeMap<String, String>,
}

/// A loopback HTTP listener standing in for a relying party's redirect URI (RFC 8252 §7.3
/// lets `http` redirect URIs use loopback). It answers every request with a small page and
/// records the requests.
pub struct RelyingParty {
    pub origin: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl RelyingParty {
    pub fn start() -> RelyingParty {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
        let origin = format!(
            "http://{}",
            listener.local_addr().expect("the listener's address")
        );
        let hits = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&hits);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(hit) = serve(stream) {
                    recorded.lock().unwrap_or_else(|e| e.into_inner()).push(hit);
                }
            }
        });
        RelyingParty { origin, hits }
    }

    /// `http://127.0.0.1:PORT/cb`
    pub fn redirect_uri(&self) -> String {
        format!("{}/cb", self.origin)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits for the first request to `/cb`.
    pub async fn callback(&self) -> Hit {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(h) = self.hits().into_iter().find(|h| h.path == "/cb") {
                return h;
            }
            assert!(
                Instant::now() < deadline,
                "the relying party at {} got no callback",
                self.origin
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Reads one HTTP/1.1 request, answers it, and returns what it carried.
fn serve(mut stream: TcpStream) -> Option<Hit> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length.min(1 << 20)];
    reader.read_exact(&mut body).ok()?;
    let page = "<!doctype html><html lang=\"en\"><head><title>Relying party</title></head>\
                <body><p>callback received</p></body></html>";
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{page}",
        page.len()
    );
    let _ = stream.flush();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Hit {
        method,
        path: path.to_owned(),
        query: suite::parse_params(query),
        form: suite::parse_params(&String::from_utf8_lossy(&body)),
    })
}

/// A confidential OIDC client whose redirect URI is `rp`'s `/cb`, with consent asked (not
/// skipped) unless `overrides` says otherwise.
pub fn client_for(rp: &RelyingParty, overrides: Value) -> suite::OidcClient {
    let mut body = json!({
        "client_name": "Browser RP",
        "redirect_uris": [rp.redirect_uri()],
        "post_logout_redirect_uris": [format!("{}/logged-out", rp.origin)],
        "skip_consent": false,
    });
    if let (Some(b), Some(o)) = (body.as_object_mut(), overrides.as_object()) {
        for (k, v) in o {
            b.insert(k.clone(), v.clone());
        }
    }
    suite::create_oidc_client(body)
}
