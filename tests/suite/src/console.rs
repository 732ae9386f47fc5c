//! The console (issue 11) as a browser drives it: sign in through `/` and the provider's own
//! login page, read a page's CSRF token, submit console forms.

use crate::oidc::{Browser, User, form_with_action, forms, login_page_submit};
use crate::{Resp, admin};
use serde_json::json;

/// Follows 303s from `resp` on the provider, filling the login form with `user` when one is
/// shown; returns the first page that is neither (at most 12 steps).
pub fn follow(browser: &Browser, mut resp: Resp, user: Option<&User>) -> Resp {
    for _ in 0..12 {
        if (300..400).contains(&resp.status) {
            let location = resp
                .header("location")
                .unwrap_or_else(|| panic!("a {} without Location", resp.status))
                .to_owned();
            resp = browser.get(&location);
            continue;
        }
        if resp.status == 200
            && let (Some(user), Some(_)) = (
                user,
                form_with_action(&resp.text(), "/login").filter(|f| f.has_field("password")),
            )
        {
            resp = login_page_submit(browser, &resp, user);
            continue;
        }
        return resp;
    }
    panic!("the console sign-in did not settle within 12 steps");
}

/// Signs `user` in to the console from `/`; returns the launcher page (200).
pub fn sign_in(browser: &Browser, user: &User) -> Resp {
    let first = browser.get("/");
    assert_eq!(
        first.status,
        303,
        "/ sends a stranger to sign in: {}",
        first.text()
    );
    let page = follow(browser, first, Some(user));
    assert_eq!(
        page.status,
        200,
        "the launcher after sign-in: {}",
        page.text()
    );
    assert!(page.text().contains("Your apps"), "{}", page.text());
    page
}

/// The CSRF token on a console page.
pub fn csrf(page: &Resp) -> String {
    forms(&page.text())
        .into_iter()
        .find_map(|f| f.value("csrf").map(str::to_owned))
        .unwrap_or_else(|| panic!("no csrf on the page: {}", page.text()))
}

/// POSTs `pairs` to `action` with the CSRF token of the console page at `from`.
pub fn post(browser: &Browser, from: &str, action: &str, pairs: &[(&str, &str)]) -> Resp {
    let page = browser.get(from);
    assert_eq!(page.status, 200, "{from}: {}", page.text());
    let token = csrf(&page);
    let mut all = vec![("csrf", token.as_str())];
    all.extend_from_slice(pairs);
    browser.post_form(action, &all)
}

/// A global admin (`is_admin`), created through the admin API.
pub fn create_admin() -> User {
    let u = crate::oidc::create_user(json!({"is_admin": true}));
    assert_eq!(u.record["is_admin"], true, "{}", u.record);
    u
}

/// Whether the user with `id` exists (admin API).
pub fn user_exists(id: &str) -> bool {
    admin("GET", &format!("/users/{id}"), None).status == 200
}
