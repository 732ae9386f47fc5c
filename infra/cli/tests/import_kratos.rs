//! `edgeid import kratos` end to end (issue 10): `edgeid serve` on a temporary data directory,
//! a stand-in for Kratos' admin API on another port, and the import command between them over
//! real HTTP, from the API (paged) and from a file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_edgeid");
const TOKEN: &str = "cli-import-token";

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/migration")
        .join(name)
}

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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `edgeid serve` with its own data directory (it generates the key-encryption key there).
fn serve(name: &str) -> Server {
    let data = std::env::temp_dir().join(format!("edgeid-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let port = free_port();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--threads",
            "1",
        ])
        .arg("--data")
        .arg(&data)
        .env_remove("EDGEID_KEY_ENCRYPTION_KEY")
        .env("EDGEID_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("serve prints a line").unwrap();
    assert!(first.starts_with("Serving http://"), "{first}");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "edgeid serve did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, url }
}

fn edgeid(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(["--url", url, "--token", TOKEN])
        .args(args)
        .env_remove("EDGEID_URL")
        .env_remove("EDGEID_TOKEN")
        .env_remove("KRATOS_ADMIN_TOKEN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Stands in for Ory Kratos' admin API, `GET /admin/identities` only: it serves the fixture
/// identities (sorted by id, as Kratos' keyset paging is) `page_size` at a time, each page
/// with a `Link` header as Kratos writes it (`rel="first"` always, `rel="next"` while more
/// remain, the token opaque to the client), and only the credential configs asked for with
/// `include_credential` (Kratos drops `config` of the others). It records every request
/// target so the test can check what the importer asked.
fn fake_kratos(page_size: usize) -> (String, Arc<Mutex<Vec<String>>>) {
    let text = std::fs::read_to_string(fixture_path("kratos-identities.json")).unwrap();
    let mut identities: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    identities.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let target = request_line.split(' ').nth(1).unwrap_or("").to_owned();
            log.lock().unwrap().push(target.clone());
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let wanted: Vec<&str> = params
                .iter()
                .filter(|(k, _)| k == "include_credential")
                .map(|(_, v)| v.as_str())
                .collect();
            let start: usize = params
                .iter()
                .find(|(k, _)| k == "page_token")
                .and_then(|(_, v)| v.strip_prefix("tok-"))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let (status, body, link) = if path != "/admin/identities" {
                (
                    "404 Not Found",
                    "{\"error\":{\"code\":404}}".to_owned(),
                    String::new(),
                )
            } else {
                let page: Vec<serde_json::Value> = identities
                    .iter()
                    .skip(start)
                    .take(page_size)
                    .map(|i| {
                        let mut i = i.clone();
                        if let Some(creds) = i["credentials"].as_object_mut() {
                            for (kind, c) in creds.iter_mut() {
                                if !wanted.contains(&kind.as_str()) {
                                    c.as_object_mut().unwrap().remove("config");
                                }
                            }
                        }
                        i
                    })
                    .collect();
                let mut link = format!(
                    "</admin/identities?page_size={page_size}&page_token=tok-0>; rel=\"first\""
                );
                if start + page_size < identities.len() {
                    link.push_str(&format!(
                        ",</admin/identities?page_size={page_size}&page_token=tok-{}>; rel=\"next\"",
                        start + page_size
                    ));
                }
                ("200 OK", serde_json::to_string(&page).unwrap(), link)
            };
            let mut resp = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            if !link.is_empty() {
                resp.push_str(&format!("link: {link}\r\n"));
            }
            resp.push_str("\r\n");
            resp.push_str(&body);
            let _ = stream.write_all(resp.as_bytes());
            let _ = stream.flush();
        }
    });
    (url, seen)
}

fn count_line(out: &str, label: &str) -> usize {
    out.lines()
        .find(|l| l.trim_start().starts_with(label))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no '{label}' line in:\n{out}"))
}

#[test]
fn issue10_import_kratos_pages_through_the_admin_api_and_is_idempotent() {
    let server = serve("import-kratos-api");
    let (kratos, seen) = fake_kratos(3);

    let (ok, out, err) = edgeid(
        &server.url,
        &[
            "import",
            "kratos",
            "--kratos-admin-url",
            &kratos,
            "--dry-run",
        ],
    );
    assert!(ok, "{out}{err}");
    assert_eq!(count_line(&out, "would be created"), 10, "{out}");
    assert!(out.contains("dry run: nothing written"), "{out}");
    let (ok, list, _) = edgeid(&server.url, &["user", "list"]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&list).unwrap(),
        serde_json::json!([])
    );

    let (ok, out, err) = edgeid(
        &server.url,
        &["import", "kratos", "--kratos-admin-url", &kratos],
    );
    assert!(ok, "{out}{err}");
    assert_eq!(count_line(&out, "created"), 10, "{out}");
    assert_eq!(count_line(&out, "refused"), 0, "{out}");
    // Fatima (no password) gets a welcome link; Sofia's lookup secrets are noted.
    assert!(
        out.contains("d519d32f-28e3-4f14-9ead-0ae16d1619cb: http"),
        "{out}"
    );
    assert!(out.contains("lookup_secret"), "{out}");
    assert!(out.contains("records/s"), "{out}");

    let (ok, out, err) = edgeid(
        &server.url,
        &["import", "kratos", "--kratos-admin-url", &kratos],
    );
    assert!(ok, "{out}{err}");
    assert_eq!(count_line(&out, "unchanged"), 10, "{out}");
    assert_eq!(count_line(&out, "created"), 0, "{out}");

    // Every request asked for both credential types and followed the page tokens: 4 pages of
    // 3 per run (10 identities), 3 runs.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 12, "{seen:?}");
    for target in &seen {
        assert!(target.starts_with("/admin/identities?"), "{target}");
        assert!(target.contains("include_credential=password"), "{target}");
        assert!(target.contains("include_credential=totp"), "{target}");
    }
    assert!(
        seen.iter().any(|t| t.contains("page_token=tok-9")),
        "{seen:?}"
    );

    // The TOTP secret came through the API (config included for totp).
    let (ok, sofia, _) = edgeid(
        &server.url,
        &["user", "get", "8a8d0f2d-bd30-480a-b544-3d1d671faa8e"],
    );
    assert!(ok);
    assert!(
        sofia.contains("sofia.rossi@stackspin.example.org"),
        "{sofia}"
    );
}

#[test]
fn issue10_import_kratos_from_a_file_with_a_traits_mapping() {
    let server = serve("import-kratos-file");
    let file = fixture_path("kratos-identity-single.json");
    let (ok, out, err) = edgeid(
        &server.url,
        &[
            "import",
            "kratos",
            "--file",
            file.to_str().unwrap(),
            "--welcome",
            "none",
        ],
    );
    assert!(ok, "{out}{err}");
    assert_eq!(count_line(&out, "created"), 1, "{out}");
    // A mapping to a trait the schema lacks refuses every record, with the reason.
    let all = fixture_path("kratos-identities.json");
    let (ok, out, err) = edgeid(
        &server.url,
        &[
            "import",
            "kratos",
            "--file",
            all.to_str().unwrap(),
            "--traits",
            "email=mail",
        ],
    );
    assert!(ok, "{out}{err}");
    assert_eq!(count_line(&out, "refused"), 10, "{out}");
    assert!(out.contains("no e-mail address in trait 'mail'"), "{out}");
    let (ok, _, err) = edgeid(&server.url, &["import", "kratos", "--traits", "email=x"]);
    assert!(!ok && err.contains("--kratos-admin-url"), "{err}");
}
