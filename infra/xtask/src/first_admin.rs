//! The first administrator of a fresh store (issue 11 item 9): `cargo xtask up` on any host
//! creates user `admin` through the admin API when no user is a global admin, and prints a
//! one-time welcome (recovery) link to set its password, so the operator signs in to the
//! console at `<issuer>/` instead of holding only a bearer token. Later starts print only
//! where the console is.

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The first admin's username.
pub const USERNAME: &str = "admin";
/// The email of the first admin unless `EDGEID_FIRST_ADMIN_EMAIL` names one. The admin API
/// wants a domain with a dot (`admin@localhost` is refused); `.localhost` names are reserved
/// for the local host (RFC 6761 §6.3), so nothing is ever mailed elsewhere.
pub const DEFAULT_EMAIL: &str = "admin@edgeid.localhost";

/// What the start found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstAdmin {
    /// Some user is a global admin already.
    Present,
    /// `admin` was created; `link` sets its password (single use, 24 hours).
    Created { email: String, link: String },
    /// No admin, and `admin` could not be created (the name is taken by a non-admin).
    Blocked(String),
}

impl FirstAdmin {
    /// The lines `cargo xtask up` prints about the console.
    pub fn lines(&self, issuer: &str) -> Vec<String> {
        let console = format!("{}/", issuer.trim_end_matches('/'));
        match self {
            FirstAdmin::Present => vec![format!("  console:     {console}")],
            FirstAdmin::Created { email, link } => vec![
                format!(
                    "  first admin: user '{USERNAME}' ({email}) created; set its password (link works once, 24 h):"
                ),
                format!("               {link}"),
                format!("  then sign in at {console}"),
            ],
            FirstAdmin::Blocked(why) => vec![
                format!("  console:     {console}"),
                format!("  no admin:    {why}"),
            ],
        }
    }
}

/// One admin API call: method, path under `/admin`, JSON body; answers status and JSON.
pub type Api<'a> = dyn FnMut(&str, &str, Option<Value>) -> anyhow::Result<(u16, Value)> + 'a;

/// The admin API of the host at `base_url` over HTTP.
pub fn http_api(
    base_url: &str,
    admin_token: &str,
) -> impl FnMut(&str, &str, Option<Value>) -> anyhow::Result<(u16, Value)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let (base, auth) = (base_url.to_owned(), format!("Bearer {admin_token}"));
    move |method, path, body| {
        let url = format!("{base}/admin{path}");
        let mut resp = match (method, body) {
            ("GET", _) => agent.get(&url).header("authorization", &auth).call(),
            (_, Some(b)) => agent.post(&url).header("authorization", &auth).send_json(b),
            (_, None) => agent.post(&url).header("authorization", &auth).send_empty(),
        }
        .with_context(|| format!("{method} /admin{path}"))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

/// Creates the first admin when no user is one.
pub fn ensure(api: &mut Api<'_>, email: &str) -> anyhow::Result<FirstAdmin> {
    let mut after = String::new();
    loop {
        let path = if after.is_empty() {
            "/users?limit=500".to_owned()
        } else {
            format!("/users?limit=500&after={after}")
        };
        let (status, page) = api("GET", &path, None)?;
        if status != 200 {
            bail!("GET /admin/users answered {status}: {page}");
        }
        let users = page["users"].as_array().cloned().unwrap_or_default();
        if users.iter().any(|u| u["is_admin"] == true) {
            return Ok(FirstAdmin::Present);
        }
        match page["next"].as_str() {
            Some(next) if !next.is_empty() && next != after => after = next.to_owned(),
            _ => break,
        }
    }
    let (status, created) = api(
        "POST",
        "/users",
        Some(
            json!({"username": USERNAME, "email": email, "name": "Administrator",
                    "is_admin": true}),
        ),
    )?;
    match status {
        201 => {}
        409 => {
            return Ok(FirstAdmin::Blocked(format!(
                "a user '{USERNAME}' or '{email}' exists and is not an administrator; make one \
                 with `edgeid user update <user> --admin` (admin token above)"
            )));
        }
        _ => bail!("creating the first admin: {status} {created}"),
    }
    let id = created["id"]
        .as_str()
        .context("the created admin has no id")?
        .to_owned();
    let (status, link) = api("POST", &format!("/users/{id}/recovery"), Some(json!({})))?;
    if status != 201 {
        bail!("the first admin's welcome link: {status} {link}");
    }
    Ok(FirstAdmin::Created {
        email: created["email"].as_str().unwrap_or(email).to_owned(),
        link: link["link"]
            .as_str()
            .context("no link in the answer")?
            .to_owned(),
    })
}

/// The email the first admin gets: `EDGEID_FIRST_ADMIN_EMAIL` or [`DEFAULT_EMAIL`].
pub fn email_from_env() -> String {
    std::env::var("EDGEID_FIRST_ADMIN_EMAIL")
        .ok()
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| DEFAULT_EMAIL.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// An admin API stand-in: a user list and what was asked of it.
    struct Fake {
        users: Vec<Value>,
        calls: Vec<String>,
    }

    impl Fake {
        fn call(
            &mut self,
            method: &str,
            path: &str,
            body: Option<Value>,
        ) -> anyhow::Result<(u16, Value)> {
            self.calls.push(format!("{method} {path}"));
            Ok(match (method, path) {
                ("GET", p) if p.starts_with("/users?") => {
                    // Two users a page, to see the paging followed.
                    let start = p
                        .split("after=")
                        .nth(1)
                        .and_then(|a| self.users.iter().position(|u| u["id"] == a))
                        .map_or(0, |i| i + 1);
                    let page: Vec<Value> = self.users.iter().skip(start).take(2).cloned().collect();
                    let next = (page.len() == 2).then(|| page[1]["id"].clone());
                    (200, json!({"users": page, "next": next}))
                }
                ("POST", "/users") => {
                    let b = body.unwrap();
                    if self.users.iter().any(|u| u["username"] == b["username"]) {
                        return Ok((409, json!({"error": "conflict"})));
                    }
                    let mut u = b.clone();
                    u["id"] = json!("id-admin");
                    self.users.push(u.clone());
                    (201, u)
                }
                ("POST", "/users/id-admin/recovery") => (
                    201,
                    json!({"link": "http://127.0.0.1:1/recovery?token=t", "purpose": "welcome"}),
                ),
                _ => (404, Value::Null),
            })
        }
    }

    fn user(id: &str, admin: bool) -> Value {
        json!({"id": id, "username": id, "is_admin": admin})
    }

    #[test]
    fn issue11_a_fresh_store_gets_an_admin_and_a_welcome_link() {
        let mut fake = Fake {
            users: vec![],
            calls: vec![],
        };
        let got = ensure(
            &mut |m: &str, p: &str, b: Option<Value>| fake.call(m, p, b),
            DEFAULT_EMAIL,
        )
        .unwrap();
        let FirstAdmin::Created { email, link } = &got else {
            panic!("{got:?}");
        };
        assert_eq!(email, DEFAULT_EMAIL);
        assert!(link.contains("/recovery?token="));
        assert_eq!(fake.users[0]["is_admin"], true);
        assert_eq!(fake.users[0]["username"], "admin");
        let lines = got.lines("http://127.0.0.1:18313").join("\n");
        assert!(
            lines.contains(link) && lines.contains("sign in at http://127.0.0.1:18313/"),
            "{lines}"
        );

        // The next start finds the admin and only says where the console is.
        let again = ensure(
            &mut |m: &str, p: &str, b: Option<Value>| fake.call(m, p, b),
            DEFAULT_EMAIL,
        )
        .unwrap();
        assert_eq!(again, FirstAdmin::Present);
        assert_eq!(
            again.lines("http://127.0.0.1:18313/"),
            vec!["  console:     http://127.0.0.1:18313/"]
        );
        assert_eq!(
            fake.calls
                .iter()
                .filter(|c| c.starts_with("POST /users"))
                .count(),
            2,
            "{:?}",
            fake.calls
        );
    }

    #[test]
    fn issue11_an_admin_on_a_later_page_is_found_and_a_taken_name_is_said() {
        let mut fake = Fake {
            users: vec![
                user("a", false),
                user("b", false),
                user("c", false),
                user("d", true),
            ],
            calls: vec![],
        };
        let got = ensure(
            &mut |m: &str, p: &str, b: Option<Value>| fake.call(m, p, b),
            DEFAULT_EMAIL,
        )
        .unwrap();
        assert_eq!(got, FirstAdmin::Present);
        assert!(
            fake.calls.iter().all(|c| c.starts_with("GET")),
            "{:?}",
            fake.calls
        );

        let mut fake = Fake {
            users: vec![user("admin", false)],
            calls: vec![],
        };
        let got = ensure(
            &mut |m: &str, p: &str, b: Option<Value>| fake.call(m, p, b),
            "ops@example.org",
        )
        .unwrap();
        assert!(matches!(got, FirstAdmin::Blocked(_)), "{got:?}");
    }

    #[test]
    fn issue11_the_default_email_passes_the_admin_apis_rule() {
        // The rule of edgeid::user::UserInput::validate: a dot in the domain.
        let (user, domain) = DEFAULT_EMAIL.split_once('@').unwrap();
        assert!(!user.is_empty() && domain.contains('.') && !domain.ends_with('.'));
    }
}
