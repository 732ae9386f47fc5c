//! Issue 10: the import rate of a host, printed (not asserted: it is a measurement).
//!
//! `BASE_URL=... EDGEID_ADMIN_TOKEN=... cargo test -p edgeid-suite --test issue10_rate -- --ignored --nocapture`
//! (`ISSUE10_RATE_USERS`, default 2000). It imports that many users with an argon2id password
//! hash each (the import stores hashes, it does not compute them) and one app role each
//! through `POST /admin/import/edgeid` in batches of 200 rows, as `edgeid import edgeid` does,
//! then runs the same import again (every row unchanged), and prints rows and users per second.

use std::time::Instant;

use edgeid_suite::*;
use serde_json::{Value, json};

const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
                   3Nxqj4P7W9cA3DMtqZbN0bK9bqkG2bZg3L0Fh0h1Q2s";

fn post_all(table: &str, rows: &[Value]) -> [u64; 4] {
    let mut counts = [0u64; 4];
    for chunk in rows.chunks(200) {
        let resp = admin(
            "POST",
            "/import/edgeid",
            Some(json!({"format": "edgeid-export", "version": 1, "table": table, "rows": chunk})),
        );
        assert_eq!(resp.status, 200, "{table}: {}", resp.text());
        let r = resp.json();
        for (i, k) in ["created", "updated", "unchanged", "refused"]
            .iter()
            .enumerate()
        {
            counts[i] += r[k].as_u64().unwrap_or(0);
        }
    }
    counts
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn issue10_import_rate() {
    let n: usize = std::env::var("ISSUE10_RATE_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let run = unique("rate");
    let app = json!([{"slug": run, "name": "Rate", "url": "https://rate.example.test/",
                      "external": 0, "client_id": run, "created_at": 1, "updated_at": 1}]);
    post_all("apps", app.as_array().map_or(&[][..], Vec::as_slice));
    let ids: Vec<String> = (0..n).map(|i| format!("{run}-{i}")).collect();
    let users: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"id": id, "email": format!("{id}@example.test"), "username": id,
                   "name": "Rate", "given_name": "", "family_name": "", "email_verified": 1,
                   "is_admin": 0, "disabled": 0, "created_at": 1, "updated_at": 1})
        })
        .collect();
    let creds: Vec<Value> = ids
        .iter()
        .map(|id| json!({"user_id": id, "phc": PHC, "updated_at": 1}))
        .collect();
    let roles: Vec<Value> = ids
        .iter()
        .map(|id| json!({"user_id": id, "app_slug": run, "role": "user", "granted_at": 1}))
        .collect();
    for pass in ["first run (created)", "second run (unchanged)"] {
        let started = Instant::now();
        let mut total = [0u64; 4];
        for (t, rows) in [
            ("users", &users),
            ("password_credentials", &creds),
            ("app_roles", &roles),
        ] {
            let c = post_all(t, rows);
            for i in 0..4 {
                total[i] += c[i];
            }
        }
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(total[3], 0, "nothing refused");
        println!(
            "{}: {pass}: {n} users (+ {n} password hashes, {n} roles) in {secs:.2} s: \
             {:.0} users/s, {:.0} rows/s [created {}, updated {}, unchanged {}]",
            base(),
            n as f64 / secs,
            (3 * n) as f64 / secs,
            total[0],
            total[1],
            total[2]
        );
    }
}
