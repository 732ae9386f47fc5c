//! The console's CSV import and security views on every host (issue 11 items 2, 5): a CSV
//! upload creates the users with their roles and the audit page lists the import; a file with
//! a bad row writes nothing; ending a user's sessions from the console signs that browser out.

use edgeid_suite::console::{self, create_admin};
use edgeid_suite::oidc::Browser;
use edgeid_suite::{Resp, admin, create_client, create_user, serde_json::json, unique};

const BOUNDARY: &str = "----edgeidSuiteBoundaryQ3x9";

/// POSTs the CSV as a file upload (`multipart/form-data`) with the import page's CSRF token.
fn upload(b: &Browser, csv: &str) -> Resp {
    let page = b.get("/admin/console/import");
    assert_eq!(page.status, 200, "{}", page.text());
    let token = console::csrf(&page);
    let body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{token}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"people.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n{csv}\r\n--{BOUNDARY}--\r\n"
    );
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    b.send(
        "POST",
        "/admin/console/import/preview",
        &[("content-type", &ct)],
        Some(body.as_bytes()),
    )
}

/// The value of the hidden `sealed` field of a preview.
fn sealed(preview: &Resp) -> String {
    let html = preview.text();
    let marker = "name=\"sealed\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no confirmation form: {html}"))
        + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn app() -> String {
    let (client_id, _) = create_client(json!({}));
    let slug = unique("csv").replace('-', "_");
    let resp = admin(
        "POST",
        "/apps",
        Some(
            json!({"slug": slug, "name": "CSV App", "url": "https://csv.example.test",
                    "client_id": client_id}),
        ),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    slug
}

#[test]
fn issue11_a_csv_import_creates_users_with_roles_and_the_audit_page_lists_it() {
    let slug = app();
    let (a, g) = (unique("ada"), unique("grace"));
    let csv = format!(
        "name,email,username,roles\r\n\
         Ada Lovelace,{a}@example.test,{a},{slug}:admin;{slug}:user\r\n\
         \"Hopper, Grace\",{g}@example.test,{g},\r\n"
    );
    let root = create_admin();
    let b = Browser::new();
    console::sign_in(&b, &root);
    let preview = upload(&b, &csv);
    assert_eq!(preview.status, 200, "{}", preview.text());
    assert!(preview.text().contains("2 users will be created"));
    assert_eq!(
        admin("GET", &format!("/users/{a}"), None).status,
        404,
        "a preview writes nothing"
    );

    let done = console::post(
        &b,
        "/admin/console/import",
        "/admin/console/import/confirm",
        &[("sealed", &sealed(&preview))],
    );
    assert_eq!(done.status, 200, "{}", done.text());
    assert!(
        done.text().contains("2 users were created"),
        "{}",
        done.text()
    );

    let ada = admin("GET", &format!("/users/{a}"), None);
    assert_eq!(ada.status, 200);
    assert_eq!(ada.json()["name"], "Ada Lovelace");
    let roles = admin("GET", &format!("/users/{a}/roles"), None).json();
    let mut held: Vec<String> = roles["roles"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|x| x["role"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default();
    held.sort();
    assert_eq!(held, vec!["admin", "user"], "{roles}");
    assert_eq!(
        admin("GET", &format!("/users/{g}"), None).json()["name"],
        "Hopper, Grace"
    );

    let audit = b.get(&format!("/admin/console/audit?kind=user.imported&user={a}"));
    assert_eq!(audit.status, 200);
    assert!(
        audit.text().contains(&format!("{a}@example.test")),
        "{}",
        audit.text()
    );
}

#[test]
fn issue11_a_csv_with_a_bad_row_writes_nothing() {
    let slug = app();
    let (good, other) = (unique("good"), unique("other"));
    let csv = format!(
        "Good,{good}@example.test,{good},{slug}:user\n\
         Bad mail,not-an-address,{other},\n\
         No app,{other}@example.test,{other}x,no-such-app:user\n"
    );
    let root = create_admin();
    let b = Browser::new();
    console::sign_in(&b, &root);
    let preview = upload(&b, &csv);
    assert_eq!(preview.status, 422, "{}", preview.text());
    let html = preview.text();
    assert!(html.contains("2 of 3 rows have problems"), "{html}");
    assert!(html.contains("email must be an address") && html.contains("unknown app no-such-app"));
    assert!(
        !html.contains("name=\"sealed\""),
        "no confirmation for a bad file"
    );
    for u in [&good, &other] {
        assert_eq!(
            admin("GET", &format!("/users/{u}"), None).status,
            404,
            "{u}"
        );
    }
    // Without the CSRF token, nothing at all.
    let resp = b.send(
        "POST",
        "/admin/console/import/confirm",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(b"sealed=x"),
    );
    assert_eq!(resp.status, 403);
}

#[test]
fn issue11_ending_a_users_sessions_in_the_console_signs_that_browser_out() {
    let user = create_user(json!({}));
    let laptop = Browser::new();
    console::sign_in(&laptop, &user);
    let root = create_admin();
    let b = Browser::new();
    console::sign_in(&b, &root);
    let page = b.get(&format!("/admin/console/sessions?user={}", user.id));
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("name=\"sid\""), "{}", page.text());
    let from = format!("/admin/console/sessions?user={}", user.id);
    let resp = console::post(
        &b,
        &from,
        "/admin/console/sessions/end",
        &[("user", &user.id), ("all", "1")],
    );
    assert_eq!(resp.status, 303, "{}", resp.text());
    assert_eq!(laptop.get("/").status, 303, "signed out of the console");
    assert_eq!(b.get("/").status, 200, "the admin stays signed in");
    let keys = b.get("/admin/console/keys");
    assert_eq!(keys.status, 200);
    assert!(keys.text().contains(">current<"), "{}", keys.text());
}
