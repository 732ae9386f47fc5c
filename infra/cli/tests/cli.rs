//! The `edgeid` binary end to end: `serve` on a temporary data directory, then the admin
//! commands against it over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_edgeid");

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgeid-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `edgeid serve`; returns the server and what it printed on stderr before serving.
fn serve(data: &Path, admin_token: Option<&str>) -> (Server, String) {
    let port = free_port();
    let mut cmd = Command::new(BIN);
    cmd.args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--threads",
        "1",
    ])
    .arg("--data")
    .arg(data)
    .env_remove("EDGEID_ADMIN_TOKEN")
    .env_remove("EDGEID_KEY_ENCRYPTION_KEY")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some(t) = admin_token {
        cmd.env("EDGEID_ADMIN_TOKEN", t);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(all.clone());
        }
    });
    let mut lines = stdout.lines();
    let first = lines.next().expect("serve prints a line").unwrap();
    assert!(first.starts_with("Serving http://"), "{first}");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut log = String::new();
    while Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            log = l;
        }
        if log.contains("threads") {
            break;
        }
    }
    (Server { child, url }, log)
}

fn edgeid(url: &str, token: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(["--url", url])
        .arg(format!("--token={token}"))
        .args(args)
        .env_remove("EDGEID_URL")
        .env_remove("EDGEID_TOKEN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn token_status(url: &str, id: &str, secret: &str) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{id}:{secret}"),
    );
    agent
        .post(&format!("{url}/oauth2/token"))
        .header("authorization", &format!("Basic {basic}"))
        .content_type("application/x-www-form-urlencoded")
        .send("grant_type=client_credentials&scope=read")
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn admin_commands_manage_clients_and_keys() {
    let data = temp_dir("admin");
    let (server, _) = serve(&data, Some("cli-test-token"));
    let url = server.url.clone();
    let run = |args: &[&str]| edgeid(&url, "cli-test-token", args);

    let (ok, out, err) = run(&[
        "client",
        "create",
        "backup-job",
        "--secret",
        "backup-secret-1",
        "--grant-type",
        "client_credentials",
        "--scope",
        "read write",
        "--auth-method",
        "client_secret_basic",
    ]);
    assert!(ok, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["client_id"], "backup-job");
    assert_eq!(token_status(&url, "backup-job", "backup-secret-1"), 200);

    let (ok, out, _) = run(&[
        "client",
        "create",
        "--grant-type",
        "authorization_code",
        "--redirect-uri",
        "https://grafana.example/cb",
        "--skip-consent",
    ]);
    assert!(ok);
    let generated: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        generated["client_secret"]
            .as_str()
            .is_some_and(|s| s.len() >= 32),
        "a generated secret is printed once"
    );
    assert_eq!(generated["skip_consent"], true);

    let (ok, out, _) = run(&["client", "list"]);
    assert!(ok);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);

    let (ok, out, _) = run(&["client", "get", "backup-job"]);
    assert!(ok);
    assert!(
        !out.contains("backup-secret-1"),
        "the secret is never shown again"
    );

    let (ok, _, err) = run(&[
        "client",
        "create",
        "bad",
        "--redirect-uri",
        "http://evil.example/cb",
    ]);
    assert!(!ok);
    assert!(
        err.contains("redirect_uris"),
        "the reason reaches the operator: {err}"
    );

    let (ok, out, _) = run(&["keys", "list"]);
    assert!(ok);
    let before: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        before["keys"].as_array().unwrap().len(),
        4,
        "current + next for ES256 and RS256"
    );
    let (ok, out, _) = run(&["keys", "rotate", "--alg", "ES256"]);
    assert!(ok);
    let after: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        after["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["state"] == "retired")
    );

    let (ok, _, _) = run(&["client", "delete", "backup-job"]);
    assert!(ok);
    assert_eq!(token_status(&url, "backup-job", "backup-secret-1"), 401);

    let (ok, _, err) = edgeid(&url, "wrong-token", &["client", "list"]);
    assert!(!ok);
    assert!(err.contains("401"), "{err}");
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn first_start_prints_a_generated_admin_token_once_and_restarts_keep_the_keys() {
    let data = temp_dir("first");
    let (server, log) = serve(&data, None);
    let token = log
        .lines()
        .find_map(|l| l.split("keep it): ").nth(1))
        .unwrap_or_else(|| panic!("a generated admin token is printed: {log}"))
        .trim()
        .to_owned();
    assert!(data.join("admin-token.sha256").exists());
    let stored = std::fs::read_to_string(data.join("admin-token.sha256")).unwrap();
    assert!(!stored.contains(&token), "only the digest is kept");
    let (ok, _, err) = edgeid(
        &server.url,
        &token,
        &[
            "client",
            "create",
            "svc",
            "--secret",
            "svc-secret-1",
            "--grant-type",
            "client_credentials",
            "--scope",
            "read",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(token_status(&server.url, "svc", "svc-secret-1"), 200);
    drop(server);

    // Restart on the same data: no new token is printed, the old one still works, and the
    // sealed signing keys still open with the generated key-encryption key.
    let (server, log) = serve(&data, None);
    assert!(
        !log.contains("keep it"),
        "the token is printed only on first start: {log}"
    );
    assert!(
        !log.contains("provisioned"),
        "keys are provisioned only once: {log}"
    );
    let (ok, _, _) = edgeid(&server.url, &token, &["keys", "list"]);
    assert!(ok);
    assert_eq!(token_status(&server.url, "svc", "svc-secret-1"), 200);
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}

/// `edgeid user ...` with the password on standard input; the hash lands in the credentials
/// database and nowhere in the main one.
#[test]
fn user_commands_create_with_password_stdin_list_get_and_delete() {
    use std::io::Write as _;
    let data = temp_dir("users");
    let (server, _) = serve(&data, Some("cli-user-token"));
    let url = server.url.clone();
    let mut child = Command::new(BIN)
        .args(["--url", &url, "--token", "cli-user-token"])
        .args([
            "user",
            "create",
            "--email",
            "bob@example.com",
            "--username",
            "bob",
        ])
        .args(["--name", "Bob Builder", "--password-stdin"])
        .env_remove("EDGEID_URL")
        .env_remove("EDGEID_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"can-we-fix-it\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["username"], "bob");
    assert!(created.get("password").is_none());

    let run = |args: &[&str]| edgeid(&url, "cli-user-token", args);
    let (ok, stdout, _) = run(&["user", "list"]);
    assert!(ok && stdout.contains(&id));
    let (ok, stdout, _) = run(&["user", "get", &id]);
    assert!(ok && stdout.contains("bob@example.com"));
    let (ok, _, err) = run(&[
        "user",
        "create",
        "--email",
        "BOB@example.com",
        "--username",
        "b2",
    ]);
    assert!(!ok && err.contains("409"), "{err}");

    // WAL mode: a fresh write may still sit in the `-wal` file.
    let read = |name: &str| {
        let mut bytes = std::fs::read(data.join(name)).unwrap();
        bytes.extend(std::fs::read(data.join(format!("{name}-wal"))).unwrap_or_default());
        bytes
    };
    let main_db = read("edgeid.db");
    let credentials_db = read("credentials.db");
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(contains(&credentials_db, b"$argon2id$"));
    assert!(!contains(&main_db, b"$argon2id$"));

    let (ok, stdout, _) = run(&["user", "delete", &id]);
    assert!(ok && stdout.contains("deleted"));
    let (ok, _, err) = run(&["user", "get", &id]);
    assert!(!ok && err.contains("404"), "{err}");
}

/// `edgeid app ...` and `edgeid role ...`: the GitLab example of docs/kubernetes.md.
#[test]
fn app_and_role_commands_register_an_app_and_assign_roles() {
    let data = temp_dir("apps");
    let (server, _) = serve(&data, Some("cli-app-token"));
    let run = |args: &[&str]| edgeid(&server.url, "cli-app-token", args);
    let (ok, _, err) = run(&[
        "user",
        "create",
        "--email",
        "eve@example.com",
        "--username",
        "eve",
    ]);
    assert!(ok, "{err}");
    let (ok, stdout, err) = run(&[
        "app",
        "create",
        "ext-gitlab",
        "GitLab",
        "https://gitlab.example.com",
        "--client-id",
        "gitlab",
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("\"external\": true"), "{stdout}");
    let (ok, _, err) = run(&[
        "app",
        "create",
        "ext-gitlab",
        "Again",
        "https://x.example.com",
    ]);
    assert!(!ok && err.contains("409"), "{err}");

    let (ok, stdout, err) = run(&["role", "grant", "eve", "ext-gitlab", "admin"]);
    assert!(ok && stdout.contains("granted"), "{err}");
    let (ok, stdout, _) = run(&["role", "list", "eve@example.com"]);
    assert!(
        ok && stdout.contains("ext-gitlab") && stdout.contains("admin"),
        "{stdout}"
    );
    let (ok, _, err) = run(&["role", "grant", "eve", "no-such-app", "user"]);
    assert!(!ok && err.contains("404"), "{err}");
    let (ok, _, _) = run(&["role", "revoke", "eve", "ext-gitlab", "admin"]);
    assert!(ok);
    let (ok, stdout, _) = run(&["role", "list", "eve"]);
    assert!(ok && stdout.contains("\"roles\": []"), "{stdout}");
    let (ok, stdout, _) = run(&["app", "list"]);
    assert!(ok && stdout.contains("GitLab"));
}

/// `edgeid user update|disable|enable|list --search` and `edgeid audit list` (issue 4).
#[test]
fn user_update_disable_enable_search_and_audit_list() {
    let data = temp_dir("user-admin");
    let (server, _) = serve(&data, Some("cli-audit-token"));
    let run = |args: &[&str]| edgeid(&server.url, "cli-audit-token", args);
    for (email, username) in [("fay@example.com", "fay"), ("gus@other.test", "gus")] {
        let (ok, _, err) = run(&["user", "create", "--email", email, "--username", username]);
        assert!(ok, "{err}");
    }
    let (ok, stdout, _) = run(&["user", "get", "fay"]);
    assert!(ok, "{stdout}");
    let id = serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (ok, stdout, err) = run(&[
        "user",
        "update",
        "fay",
        "--email",
        "fay@new.example",
        "--name",
        "Fay Wray",
        "--email-verified",
        "true",
        "--admin",
        "false",
    ]);
    assert!(ok, "{err}");
    let updated: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(updated["id"], id.as_str(), "the sub never changes");
    assert_eq!(updated["email"], "fay@new.example");
    assert_eq!(updated["name"], "Fay Wray");
    assert_eq!(updated["email_verified"], true);
    let (ok, _, err) = run(&["user", "update", "fay", "--username", "GUS"]);
    assert!(!ok && err.contains("409"), "{err}");
    let (ok, _, err) = run(&["user", "update", "fay", "--email", "nope"]);
    assert!(!ok && err.contains("400"), "{err}");
    let (ok, _, err) = run(&["user", "update", "fay"]);
    assert!(!ok && err.contains("nothing to change"), "{err}");

    let (ok, stdout, _) = run(&["user", "list", "--search", "NEW.EXAMPLE"]);
    let found: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(ok && found.as_array().unwrap().len() == 1 && found[0]["id"] == id.as_str());
    let (ok, stdout, _) = run(&["user", "list", "--search", "no-such-user"]);
    assert!(ok && stdout.trim() == "[]", "{stdout}");

    let (ok, stdout, err) = run(&["user", "disable", "fay@new.example"]);
    assert!(ok && stdout.contains("disabled"), "{err}");
    let (_, stdout, _) = run(&["user", "get", &id]);
    assert!(stdout.contains("\"disabled\": true"), "{stdout}");
    let (ok, stdout, err) = run(&["user", "enable", "fay"]);
    assert!(ok && stdout.contains("enabled"), "{err}");
    let (_, stdout, _) = run(&["user", "get", &id]);
    assert!(stdout.contains("\"disabled\": false"), "{stdout}");
    let (ok, _, err) = run(&["user", "disable", "nobody"]);
    assert!(!ok && err.contains("404"), "{err}");

    let (ok, stdout, err) = run(&["audit", "list", "--subject", "fay"]);
    assert!(ok, "{err}");
    let events: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "user.enabled",
            "user.disabled",
            "user.updated",
            "user.created"
        ],
        "newest first"
    );
    let (ok, stdout, _) = run(&["audit", "list", "--kind", "user.created", "--limit", "1"]);
    let events: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(ok && events.as_array().unwrap().len() == 1);
    assert_eq!(
        events[0]["detail"]["username"], "gus",
        "the newest creation"
    );
}
