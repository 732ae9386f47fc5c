//! The console's CSV import through the router, in memory (issue 11 item 2): upload (a file in
//! `multipart/form-data`, or pasted text) → preview with per-row errors → confirm, which writes
//! every user and role or nothing.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[allow(clippy::wildcard_imports)]
use common::*;

const ADMIN_PW: &str = "correct-horse-battery";
const BOUNDARY: &str = "----edgeidTestBoundary7MA4YWxkTrZu0gW";

fn root(host: &MemoryHost) -> Browser<'_> {
    create_admin(host, ADMIN_PW);
    let b = Browser::new(host);
    assert_eq!(b.console_sign_in("root", ADMIN_PW).status(), 200);
    b
}

fn apps(host: &MemoryHost) {
    for (slug, client) in [("grafana", "rp"), ("wiki", "wiki")] {
        let resp = admin(
            host,
            "POST",
            "/admin/apps",
            json!({"slug": slug, "name": slug, "url": format!("https://{slug}.example.test/"),
                   "client_id": client}),
        );
        assert!(resp.status().is_success(), "{}", text(&resp));
    }
}

/// POSTs `multipart/form-data` with the browser's cookies: text fields, and `file` as a file.
fn upload(
    b: &Browser<'_>,
    csrf: Option<&str>,
    file: Option<&str>,
    pasted: Option<&str>,
) -> Response {
    let mut body = String::new();
    let mut part = |name: &str, filename: Option<&str>, value: &str| {
        body.push_str(&format!("--{BOUNDARY}\r\n"));
        match filename {
            Some(f) => body.push_str(&format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                 Content-Type: text/csv\r\n\r\n"
            )),
            None => body.push_str(&format!(
                "Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"
            )),
        }
        body.push_str(value);
        body.push_str("\r\n");
    };
    if let Some(c) = csrf {
        part("csrf", None, c);
    }
    part("file", Some("people.csv"), file.unwrap_or(""));
    part("csv", None, pasted.unwrap_or(""));
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    let cookie = b
        .cookies
        .borrow()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    send(
        b.host,
        "POST",
        "/admin/console/import/preview",
        &[("cookie", &cookie), ("content-type", &ct)],
        &body,
    )
}

fn preview(b: &Browser<'_>, csv: &str) -> Response {
    let csrf = b.console_csrf("/admin/console/import");
    upload(b, Some(&csrf), Some(csv), None)
}

fn confirm(b: &Browser<'_>, preview: &Response) -> Response {
    let sealed = input(&text(preview), "sealed");
    b.console_post("/admin/console/import/confirm", &[("sealed", &sealed)])
}

fn user_count(host: &MemoryHost) -> usize {
    json_of(&admin(host, "GET", "/admin/users?limit=200", json!({})))["users"]
        .as_array()
        .unwrap()
        .len()
}

fn roles(host: &MemoryHost, user: &str) -> Vec<String> {
    let r = json_of(&admin(
        host,
        "GET",
        &format!("/admin/users/{user}/roles"),
        json!({}),
    ));
    r["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            format!(
                "{}:{}",
                x["app"].as_str().unwrap(),
                x["role"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn issue11_a_good_csv_creates_the_users_with_their_roles_and_welcome_links() {
    let (host, _) = setup(json!({}));
    apps(&host);
    let b = root(&host);
    let page = b.get("/admin/console/import");
    assert_eq!(page.status(), 200);
    let html = text(&page);
    assert!(html.contains("enctype=\"multipart/form-data\"") && html.contains("type=\"file\""));
    assert!(html.contains("<label for=\"i-file\">") && html.contains("<label for=\"i-csv\">"));

    let csv = "name,email,username,roles\r\n\
               Ada Lovelace,ada@example.com,ada,grafana:admin;wiki:user\r\n\
               \"Hopper, Grace\",grace@example.com,grace,\r\n";
    let resp = preview(&b, csv);
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let html = text(&resp);
    assert!(html.contains("2 users will be created"), "{html}");
    assert!(
        html.contains("Hopper, Grace") && html.contains("grafana:admin;wiki:user"),
        "{html}"
    );
    assert_eq!(user_count(&host), 2, "a preview writes nothing");

    let done = confirm(&b, &resp);
    assert_eq!(done.status(), 200, "{}", text(&done));
    assert_eq!(done.headers()["cache-control"], "no-store");
    let html = text(&done);
    assert!(html.contains("2 users were created"), "{html}");
    // Mail is not configured in memory: the links are shown, once.
    let links: Vec<&str> = html
        .split("<code class=\"secret\">")
        .skip(1)
        .map(|s| s.split('<').next().unwrap())
        .collect();
    assert_eq!(links.len(), 2, "{html}");
    let link = links[0].replace("&#38;", "&");
    assert!(
        link.starts_with(&format!("{}/recovery", edgeid::testing::ISSUER)),
        "{link}"
    );
    assert_eq!(
        Browser::new(&host).get(&link).status(),
        200,
        "the welcome link opens"
    );

    assert_eq!(user_count(&host), 4);
    let ada = json_of(&admin(&host, "GET", "/admin/users/ada", json!({})));
    assert_eq!(ada["name"], "Ada Lovelace");
    assert_eq!(ada["email"], "ada@example.com");
    assert_eq!(roles(&host, "ada"), vec!["grafana:admin", "wiki:user"]);
    assert!(roles(&host, "grace").is_empty());
    assert_eq!(
        json_of(&admin(&host, "GET", "/admin/users/grace", json!({})))["name"],
        "Hopper, Grace"
    );

    // The audit log says so (as the API import does), with the roles.
    let audit = text(&b.get("/admin/console/audit?kind=user.imported"));
    assert!(
        audit.contains("ada@example.com") && audit.contains("grace@example.com"),
        "{audit}"
    );
    let granted = json_of(&admin(
        &host,
        "GET",
        "/admin/audit?kind=role.granted&subject=ada",
        json!({}),
    ));
    assert_eq!(granted["events"].as_array().unwrap().len(), 2, "{granted}");

    // The same confirmation again writes nothing more: the names are taken now.
    let again = confirm(&b, &resp);
    assert_eq!(again.status(), 409, "{}", text(&again));
    assert_eq!(user_count(&host), 4);
}

#[test]
fn issue11_a_file_with_a_bad_row_writes_nothing_and_says_what_is_wrong_per_row() {
    let (host, _) = setup(json!({}));
    apps(&host);
    let b = root(&host);
    let csv = "Good One,good@example.com,good,grafana:user\n\
               Bad Mail,not-an-address,badmail,\n\
               Taken,alice@example.com,alice2,\n\
               No App,noapp@example.com,noapp,jira:user\n\
               Bad Role,badrole@example.com,badrole,grafana:Admin!\n\
               Twice,twice@example.com,good,\n\
               Bad Username,bu@example.com,b u,\n";
    let resp = preview(&b, csv);
    assert_eq!(resp.status(), 422, "{}", text(&resp));
    let html = text(&resp);
    assert!(html.contains("6 of 7 rows have problems"), "{html}");
    assert!(html.contains("email must be an address"), "{html}");
    assert!(html.contains("unknown app jira"), "{html}");
    assert!(html.contains("role Admin! must be"), "{html}");
    assert!(html.contains("username good is also on line 1"), "{html}");
    assert!(html.contains("username must be 1-64 characters"), "{html}");
    assert!(
        !html.contains("name=\"sealed\""),
        "no confirmation for a bad file: {html}"
    );
    // Alice's email is taken in the store: said for its row (the import's own plan).
    let taken_row = html.split("<tr>").find(|r| r.contains("alice2")).unwrap();
    assert!(taken_row.contains("belongs to another user"), "{taken_row}");
    assert_eq!(user_count(&host), 2, "nothing written");

    // A file that was good at its preview but is not at its confirmation (the store
    // changed in between) writes nothing either.
    let resp = preview(
        &b,
        "One,one@example.com,one,wiki:user\nTwo,two@example.com,two,\n",
    );
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let r = admin(
        &host,
        "POST",
        "/admin/users",
        json!({"email": "x@example.com", "username": "two"}),
    );
    assert_eq!(r.status(), 201);
    let resp = confirm(&b, &resp);
    assert_eq!(resp.status(), 409, "{}", text(&resp));
    assert!(
        text(&resp).contains("Nothing was written"),
        "{}",
        text(&resp)
    );
    assert_eq!(
        admin(&host, "GET", "/admin/users/one", json!({})).status(),
        404,
        "the good row was not written alone"
    );
    assert!(roles(&host, "two").is_empty());

    // Malformed files are said on the upload page.
    for (bad, says) in [
        ("a,\"b\n", "quoted field is not closed"),
        ("name,email,username,phone\nx,y,z,1\n", "Unknown column"),
        ("", "Choose a CSV file"),
    ] {
        let resp = preview(&b, bad);
        assert_eq!(resp.status(), 400, "{bad:?}");
        assert!(text(&resp).contains(says), "{bad:?}: {}", text(&resp));
    }
    let big = "x,x@example.com,x\n".repeat(1500);
    assert_eq!(preview(&b, &big).status(), 413);
}

#[test]
fn issue11_pasted_text_works_and_a_script_in_a_name_is_escaped() {
    let (host, _) = setup(json!({}));
    let b = root(&host);
    let csrf = b.console_csrf("/admin/console/import");
    let csv = "<script>alert(1)</script>,evil@example.com,evil\n";
    let resp = upload(&b, Some(&csrf), None, Some(csv));
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let html = text(&resp);
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{html}"
    );
    let done = confirm(&b, &resp);
    assert_eq!(done.status(), 200);
    assert!(!text(&done).contains("<script>"));
    let evil = json_of(&admin(&host, "GET", "/admin/users/evil", json!({})));
    assert_eq!(evil["name"], "<script>alert(1)</script>", "stored as given");
}

#[test]
fn issue11_import_posts_without_csrf_or_from_others_are_refused() {
    let (host, _) = setup(json!({}));
    let b = root(&host);
    let csv = "Zed,zed@example.com,zed\n";
    assert_eq!(upload(&b, None, Some(csv), None).status(), 403);
    assert_eq!(
        upload(&b, Some(&"0".repeat(64)), Some(csv), None).status(),
        403
    );
    let resp = b.post("/admin/console/import/confirm", "sealed=abc");
    assert_eq!(resp.status(), 403);

    // A good preview's sealed file does not work from another sign-in, nor when forged.
    let good = preview(&b, csv);
    assert_eq!(good.status(), 200);
    let sealed = input(&text(&good), "sealed");
    let other = Browser::new(&host);
    other.console_sign_in("root", ADMIN_PW);
    let resp = other.console_post("/admin/console/import/confirm", &[("sealed", &sealed)]);
    assert_eq!(resp.status(), 400, "bound to the sign-in that previewed it");
    let resp = b.console_post("/admin/console/import/confirm", &[("sealed", "AAAA")]);
    assert_eq!(resp.status(), 400);
    // It expires.
    host.clock.advance(31 * 60);
    let b2 = Browser::new(&host);
    b2.console_sign_in("root", ADMIN_PW);
    let good = preview(&b2, csv);
    host.clock.advance(31 * 60);
    let resp = confirm(&b2, &good);
    assert_eq!(resp.status(), 400, "{}", text(&resp));
    assert_eq!(
        admin(&host, "GET", "/admin/users/zed", json!({})).status(),
        404
    );

    // A non-admin gets 403 on every import page.
    let user = Browser::new(&host);
    user.console_sign_in("alice", "wonderland-42");
    assert_eq!(user.get("/admin/console/import").status(), 403);
    let csrf = user.console_csrf("/");
    assert_eq!(upload(&user, Some(&csrf), Some(csv), None).status(), 403);
    let resp = user.console_post("/admin/console/import/confirm", &[("sealed", &sealed)]);
    assert_eq!(resp.status(), 403);
    assert_eq!(
        admin(&host, "GET", "/admin/users/zed", json!({})).status(),
        404
    );
}
