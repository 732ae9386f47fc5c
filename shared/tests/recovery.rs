//! Recovery links and the Mailer port through the router, in memory (issue 4): a welcome link
//! sets the first password, verifies the email and signs the user in; links are single-use and
//! expire (24 h welcome, 1 h reset); the forgot page answers the same whether or not the
//! account exists and mails only an existing, enabled one; it is throttled and checks its
//! per-browser value. The native host's mail client is checked against a local HTTP server.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[allow(clippy::wildcard_imports)]
use common::*;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};

use edgeid::Response;
use edgeid::mail::Mail;
use edgeid::platform::native::{NativeConfig, NativePorts};
use edgeid::ports::Ports as _;
use edgeid::testing::MemoryHost;
use futures_executor::block_on;
use serde_json::{Value, json};

const PASSWORD: &str = "a long passphrase";

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn post_form(
    host: &MemoryHost,
    path: &str,
    cookie: Option<&str>,
    pairs: &[(&str, &str)],
) -> Response {
    let cookie = cookie.map(|c| format!("__Host-edgeid_recovery={c}"));
    let mut headers = vec![
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-edgeid-client-addr", "192.0.2.7"),
    ];
    if let Some(c) = &cookie {
        headers.push(("cookie", c.as_str()));
    }
    send(host, "POST", path, &headers, &form(pairs))
}

/// The value of the hidden field `name` in a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let len = html[start..].find('"').unwrap();
    html[start..start + len].to_owned()
}

fn set_cookie(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

fn create_user(host: &MemoryHost, username: &str, password: Option<&str>) -> Value {
    let mut body = json!({"email": format!("{username}@example.com"), "username": username});
    if let Some(p) = password {
        body["password"] = p.into();
    }
    let resp = admin(host, "POST", "/admin/users", body);
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    json_of(&resp)
}

fn issue(host: &MemoryHost, user: &str, body: Value) -> Value {
    let resp = admin(host, "POST", &format!("/admin/users/{user}/recovery"), body);
    assert_eq!(resp.status(), 201, "{}", text(&resp));
    json_of(&resp)
}

/// The path and query of a link under the test issuer.
fn path_of(link: &str) -> &str {
    link.strip_prefix(edgeid::testing::ISSUER).unwrap()
}

fn token_of(link: &str) -> &str {
    link.split_once("token=").unwrap().1
}

/// The browser's form value, as the set-password page set it in its cookie and hidden field.
const FORM_VALUE: &str = "browser-form-value-0123456789";

/// Posts the set-password form as the browser that opened the link does (its form cookie and
/// the same value in the hidden field).
fn set_password(host: &MemoryHost, token: &str, password: &str, confirm: &str) -> Response {
    post_form(
        host,
        "/recovery/password",
        Some(FORM_VALUE),
        &[
            ("token", token),
            ("form", FORM_VALUE),
            ("password", password),
            ("confirm", confirm),
        ],
    )
}

fn password_works(host: &MemoryHost, user_id: &str, password: &str) -> bool {
    let phc = block_on(edgeid::user::password_hash(&host.credentials, user_id)).unwrap();
    phc.is_some_and(|p| edgeid::user::verify_password(&p, password))
}

fn audit_kinds(host: &MemoryHost, subject: &str) -> Vec<String> {
    let resp = admin(
        host,
        "GET",
        &format!("/admin/audit?subject={subject}"),
        json!({}),
    );
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    json_of(&resp)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn with_mail(mut host: MemoryHost) -> MemoryHost {
    host.vars.insert(
        "mail_api_url".into(),
        "https://mail.example.test/send".into(),
    );
    host.vars
        .insert("mail_from".into(), "id@example.test".into());
    host.vars.insert("instance_name".into(), "Acme <ID>".into());
    host
}

/// The forgot form's cookie and hidden value, as a browser gets them.
fn forgot_page(host: &MemoryHost) -> String {
    let resp = send(host, "GET", "/recovery", &[], "");
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let cookie = set_cookie(&resp, "__Host-edgeid_recovery").unwrap();
    assert_eq!(hidden(&text(&resp), "form"), cookie);
    cookie
}

#[test]
fn a_welcome_link_sets_the_first_password_verifies_the_email_and_signs_in() {
    let host = block_on(MemoryHost::new());
    let user = create_user(&host, "alice", None);
    let id = user["id"].as_str().unwrap();
    assert_eq!(user["email_verified"], false);

    let issued = issue(&host, "alice", json!({}));
    assert_eq!(
        issued["purpose"], "welcome",
        "no password yet: a welcome link"
    );
    assert_eq!(issued["expires_at"], host.clock.get() + 24 * 3600);
    assert_eq!(issued["sent"], false);
    let link = issued["link"].as_str().unwrap();
    assert!(link.starts_with("https://id.example.test/recovery?token="));

    // Following the link shows the form; it does not use the link.
    let page = send(&host, "GET", path_of(link), &[], "");
    assert_eq!(page.status(), 200, "{}", text(&page));
    let html = text(&page);
    assert!(html.contains("Set your password") && html.contains("alice"));
    assert!(html.contains("8 to 1024 characters"), "the rule is stated");
    let token = hidden(&html, "token");
    assert_eq!(token, token_of(link));

    // A typo keeps the link usable.
    let resp = set_password(&host, &token, PASSWORD, "something else");
    assert_eq!(resp.status(), 400);
    assert!(text(&resp).contains("differ"));
    let resp = set_password(&host, &token, "short", "short");
    assert_eq!(resp.status(), 400);
    assert!(text(&resp).contains("8 to 1024"));

    let resp = set_password(&host, &token, PASSWORD, PASSWORD);
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    assert!(text(&resp).contains("Password set"));
    assert!(text(&resp).contains("href=\"https://id.example.test/settings\""));
    assert!(set_cookie(&resp, "__Host-edgeid_session").is_some_and(|c| !c.is_empty()));
    assert!(password_works(&host, id, PASSWORD));
    let user = json_of(&admin(
        &host,
        "GET",
        &format!("/admin/users/{id}"),
        json!({}),
    ));
    assert_eq!(user["email_verified"], true);

    // Single use.
    assert_eq!(
        set_password(&host, &token, "another password", "another password").status(),
        410
    );
    assert_eq!(send(&host, "GET", path_of(link), &[], "").status(), 410);
    assert!(password_works(&host, id, PASSWORD));
    let kinds = audit_kinds(&host, id);
    assert!(kinds.contains(&"recovery.issued".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"recovery.used".to_owned()), "{kinds:?}");
}

#[test]
fn a_reset_link_expires_after_an_hour_and_using_one_kills_the_others() {
    let host = block_on(MemoryHost::new());
    let user = create_user(&host, "bob", Some("old password"));
    let id = user["id"].as_str().unwrap();
    let first = issue(&host, "bob", json!({}));
    assert_eq!(first["purpose"], "reset", "a password exists: a reset link");
    assert_eq!(first["expires_at"], host.clock.get() + 3600);
    let second = issue(&host, "bob@example.com", json!({"purpose": "reset"}));

    host.clock.advance(3599);
    let resp = set_password(
        &host,
        token_of(second["link"].as_str().unwrap()),
        PASSWORD,
        PASSWORD,
    );
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    assert!(password_works(&host, id, PASSWORD));
    // The first link died with the second, before its expiry.
    let first_token = token_of(first["link"].as_str().unwrap());
    assert_eq!(
        set_password(&host, first_token, "x password", "x password").status(),
        410
    );

    let third = issue(&host, id, json!({"purpose": "welcome"}));
    assert_eq!(third["expires_at"], host.clock.get() + 24 * 3600);
    let fourth = issue(&host, id, json!({"purpose": "reset"}));
    host.clock.advance(3601);
    let fourth_link = fourth["link"].as_str().unwrap();
    assert_eq!(
        send(&host, "GET", path_of(fourth_link), &[], "").status(),
        410
    );
    let resp = set_password(
        &host,
        token_of(fourth_link),
        "late password",
        "late password",
    );
    assert_eq!(resp.status(), 410);
    assert!(text(&resp).contains("no longer works"));
    assert!(password_works(&host, id, PASSWORD));
    // The welcome link is still good after an hour.
    let third_link = third["link"].as_str().unwrap();
    assert_eq!(
        send(&host, "GET", path_of(third_link), &[], "").status(),
        200
    );
}

#[test]
fn a_disabled_or_unknown_user_gets_no_link_from_the_admin_api() {
    let host = block_on(MemoryHost::new());
    create_user(&host, "carol", None);
    assert_eq!(
        admin(&host, "POST", "/admin/users/carol/disable", json!({})).status(),
        204
    );
    let resp = admin(&host, "POST", "/admin/users/carol/recovery", json!({}));
    assert_eq!(resp.status(), 409);
    let resp = admin(&host, "POST", "/admin/users/nobody/recovery", json!({}));
    assert_eq!(resp.status(), 404);
    let resp = admin(
        &host,
        "POST",
        "/admin/users/carol/recovery",
        json!({"purpose": "other"}),
    );
    assert_eq!(resp.status(), 400);
    let resp = send(&host, "POST", "/admin/users/carol/recovery", &[], "{}");
    assert_eq!(resp.status(), 401);
}

#[test]
fn the_admin_api_mails_the_link_when_asked_and_mail_is_configured() {
    let host = block_on(MemoryHost::new());
    create_user(&host, "dave", None);
    let issued = issue(&host, "dave", json!({"send": true}));
    assert_eq!(issued["sent"], false);
    assert_eq!(issued["mail_error"], "mail is not configured");
    assert!(host.mails.borrow().is_empty());

    let host = with_mail(host);
    let issued = issue(&host, "dave", json!({"send": true}));
    assert_eq!(issued["sent"], true);
    let mails = host.mails.borrow();
    let [mail] = mails.as_slice() else {
        panic!("one mail: {mails:?}")
    };
    let link = issued["link"].as_str().unwrap();
    assert_eq!(mail.to, "dave@example.com");
    assert_eq!(mail.subject, "Set your password for Acme <ID>");
    assert!(mail.text.contains(link) && mail.text.contains("expires in 24 hours"));
    assert!(mail.text.contains("Username: dave"));
    assert!(mail.html.contains("Acme &lt;ID&gt;") && !mail.html.contains("<ID>"));
    assert!(mail.html.contains(&format!("href=\"{link}\"")));
}

#[test]
fn the_forgot_page_answers_the_same_and_mails_only_an_existing_enabled_account() {
    let host = with_mail(block_on(MemoryHost::new()));
    let user = create_user(&host, "erin", Some("old password"));
    create_user(&host, "frank", Some("old password"));
    assert_eq!(
        admin(&host, "POST", "/admin/users/frank/disable", json!({})).status(),
        204
    );
    let cookie = forgot_page(&host);

    let answers: Vec<(u16, String)> = ["erin@example.com", "nobody@example.com", "frank", "ERIN"]
        .iter()
        .map(|identifier| {
            let resp = post_form(
                &host,
                "/recovery",
                Some(&cookie),
                &[("form", cookie.as_str()), ("identifier", identifier)],
            );
            (resp.status().as_u16(), text(&resp))
        })
        .collect();
    assert_eq!(answers[0].0, 200, "{}", answers[0].1);
    assert!(answers[0].1.contains("If an account matches"));
    for other in &answers[1..] {
        assert_eq!(other, &answers[0], "every answer is the same");
    }
    let mails = host.mails.borrow().clone();
    assert_eq!(
        mails.len(),
        2,
        "erin twice, nobody and disabled frank never: {mails:?}"
    );
    assert!(mails.iter().all(|m: &Mail| m.to == "erin@example.com"));
    assert!(mails[0].subject.starts_with("Reset your password"));
    assert!(mails[0].text.contains("expires in 1 hour"));

    // The mailed link works.
    let link = mails[0]
        .text
        .lines()
        .find(|l| l.starts_with("https://"))
        .unwrap();
    let resp = set_password(&host, token_of(link), PASSWORD, PASSWORD);
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    assert!(password_works(
        &host,
        user["id"].as_str().unwrap(),
        PASSWORD
    ));
}

#[test]
fn the_forgot_page_answers_the_same_without_mail_configured() {
    let host = block_on(MemoryHost::new());
    create_user(&host, "gina", None);
    let cookie = forgot_page(&host);
    let known = post_form(
        &host,
        "/recovery",
        Some(&cookie),
        &[("form", &cookie), ("identifier", "gina")],
    );
    let unknown = post_form(
        &host,
        "/recovery",
        Some(&cookie),
        &[("form", &cookie), ("identifier", "nobody")],
    );
    assert_eq!(known.status(), 200);
    assert_eq!(
        (known.status(), text(&known)),
        (unknown.status(), text(&unknown))
    );
}

#[test]
fn the_forgot_form_needs_its_browser_value() {
    let host = with_mail(block_on(MemoryHost::new()));
    create_user(&host, "hank", None);
    let cookie = forgot_page(&host);
    for (cookie, value) in [
        (None, cookie.as_str()),
        (Some(cookie.as_str()), ""),
        (Some("a-foreign-value-xyz"), cookie.as_str()),
    ] {
        let mut pairs = vec![("identifier", "hank")];
        if !value.is_empty() {
            pairs.push(("form", value));
        }
        let resp = post_form(&host, "/recovery", cookie, &pairs);
        assert_eq!(resp.status(), 403, "{}", text(&resp));
    }
    assert!(host.mails.borrow().is_empty());
}

#[test]
fn the_forgot_form_is_throttled_per_name_and_per_address() {
    let host = with_mail(block_on(MemoryHost::new()));
    create_user(&host, "ivan", None);
    let cookie = forgot_page(&host);
    let ask = |identifier: &str| {
        post_form(
            &host,
            "/recovery",
            Some(&cookie),
            &[("form", &cookie), ("identifier", identifier)],
        )
    };
    for _ in 0..3 {
        assert_eq!(ask("ivan").status(), 200);
    }
    let resp = ask("IVAN");
    assert_eq!(
        resp.status(),
        429,
        "a fourth link for one name within the hour"
    );
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(host.mails.borrow().len(), 3);
    // Per address: 10 posts an hour whatever the names (4 were counted above).
    for i in 0..6 {
        assert_eq!(ask(&format!("someone{i}")).status(), 200);
    }
    assert_eq!(ask("someone-else").status(), 429);
    host.clock.advance(3600);
    assert_eq!(ask("ivan").status(), 200);
    assert_eq!(host.mails.borrow().len(), 4);
}

#[test]
fn the_forgot_page_carries_the_page_headers_and_escapes_what_it_echoes() {
    let host = block_on(MemoryHost::new());
    let resp = send(&host, "GET", "/recovery", &[], "");
    let html = text(&resp);
    assert!(html.contains("<label for=\"identifier\">"));
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(
        send(&host, "GET", "/recovery/password", &[], "").status(),
        405
    );
    assert_eq!(send(&host, "GET", "/recovery/other", &[], "").status(), 404);
    assert_eq!(
        edgeid::Function::for_path("/recovery/password"),
        Some(edgeid::Function::Recovery)
    );
    // An XSS probe in the echoed field comes back escaped.
    let cookie = forgot_page(&host);
    let resp = post_form(
        &host,
        "/recovery",
        Some(&cookie),
        &[("form", &cookie), ("identifier", &"<script>".repeat(100))],
    );
    assert_eq!(resp.status(), 400);
    assert!(!text(&resp).contains("<script>"));
}

/// One HTTP/1.1 exchange on a local socket: answers `status` and hands back the request's
/// head and body.
fn one_shot_server(status: u16) -> (String, std::thread::JoinHandle<(String, Vec<u8>)>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/send", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().unwrap())
            })
            .unwrap();
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
        )
        .unwrap();
        (head, body)
    });
    (url, handle)
}

fn native_ports(vars: &[(&str, &str)]) -> NativePorts {
    let dir = std::env::temp_dir().join(format!(
        "edgeid-mail-test-{}-{}",
        std::process::id(),
        vars.len() + vars.iter().map(|(_, v)| v.len()).sum::<usize>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let vars = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    NativePorts::open(&dir, NativeConfig(std::sync::Arc::new(vars))).unwrap()
}

fn test_mail() -> Mail {
    Mail {
        to: "user@example.com".into(),
        subject: "Reset your password".into(),
        text: "plain".into(),
        html: "<p>html</p>".into(),
    }
}

fn header_of<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn the_native_mailer_posts_the_generic_webhook_json_with_a_bearer_token() {
    let (url, server) = one_shot_server(200);
    let ports = native_ports(&[
        ("mail_api_url", &url),
        ("mail_api_token", "hook-secret"),
        ("mail_from", "Acme ID <id@example.com>"),
    ]);
    block_on(ports.send_mail(&test_mail())).unwrap();
    let (head, body) = server.join().unwrap();
    assert!(head.starts_with("POST /send HTTP/1.1\r\n"), "{head}");
    assert_eq!(
        header_of(&head, "authorization"),
        Some("Bearer hook-secret")
    );
    assert_eq!(header_of(&head, "content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        json!({"from": "Acme ID <id@example.com>", "to": "user@example.com",
               "subject": "Reset your password", "text": "plain", "html": "<p>html</p>"})
    );
}

#[test]
fn the_native_mailer_posts_postmarks_email_json_and_reports_a_refusal() {
    let (url, server) = one_shot_server(200);
    let vars = [
        ("mail_api_url", url.as_str()),
        ("mail_api_token", "server-token"),
        ("mail_from", "id@example.com"),
        ("mail_format", "postmark"),
    ];
    let ports = native_ports(&vars);
    block_on(ports.send_mail(&test_mail())).unwrap();
    let (head, body) = server.join().unwrap();
    assert_eq!(
        header_of(&head, "x-postmark-server-token"),
        Some("server-token")
    );
    assert_eq!(header_of(&head, "accept"), Some("application/json"));
    assert!(header_of(&head, "authorization").is_none());
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        json!({"From": "id@example.com", "To": "user@example.com", "Subject": "Reset your password",
               "TextBody": "plain", "HtmlBody": "<p>html</p>", "MessageStream": "outbound"})
    );

    let (url, server) = one_shot_server(422);
    let ports = native_ports(&[
        ("mail_api_url", url.as_str()),
        ("mail_from", "id@example.com"),
        ("mail_format", "postmark"),
        ("x", "refused"),
    ]);
    let err = block_on(ports.send_mail(&test_mail())).unwrap_err();
    assert!(err.message.contains("422"), "{err}");
    server.join().unwrap();
}
