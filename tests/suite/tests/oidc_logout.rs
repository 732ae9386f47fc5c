//! OpenID Connect RP-Initiated Logout 1.0 at the end_session_endpoint, black-box.

use edgeid_suite::serde_json::json;
use edgeid_suite::{
    Browser, CodeFlow, OidcClient, User, base, callback_of, code_flow, create_oidc_client,
    create_user, form, forms, is_provider_url, resolve,
};

fn logged_in() -> (OidcClient, User, Browser, CodeFlow) {
    let client = create_oidc_client(json!({}));
    let user = create_user(json!({}));
    let browser = Browser::new();
    let cf = code_flow(&browser, &client, &user, "openid");
    (client, user, browser, cf)
}

/// prompt=none answers login_required once the session is gone.
fn assert_logged_out(browser: &Browser, client: &OidcClient) {
    let req = client.auth_request().set("prompt", "none");
    let resp = browser.authorize(&req);
    let cb = callback_of(&resp)
        .unwrap_or_else(|| panic!("expected a redirect, got {}: {}", resp.status, resp.text()));
    assert_eq!(cb.error(), "login_required", "the session ended: {cb:?}");
}

fn assert_still_logged_in(browser: &Browser, client: &OidcClient) {
    let req = client.auth_request().set("prompt", "none");
    let resp = browser.authorize(&req);
    let cb = callback_of(&resp)
        .unwrap_or_else(|| panic!("expected a redirect, got {}: {}", resp.status, resp.text()));
    assert!(
        cb.param("code").is_some(),
        "the session is still there: {cb:?}"
    );
}

/// §2 and §3: a verifiable request (id_token_hint + a registered post_logout_redirect_uri)
/// ends the session and redirects with `state`.
#[test]
fn logout_with_id_token_hint_redirects_with_state_and_ends_the_session() {
    let (client, _user, browser, cf) = logged_in();
    assert!(browser.cookie("edgeid_session").is_some());
    let state = edgeid_suite::unique("ls");
    let q = form(&[
        ("id_token_hint", cf.id_token()),
        ("post_logout_redirect_uri", &client.post_logout_redirect_uri),
        ("state", &state),
    ]);
    let resp = browser.get(&format!("/oauth2/sessions/logout?{q}"));
    assert_eq!(resp.status, 303, "{}", resp.text());
    let location = resolve(resp.header("location").expect("Location"));
    let (target, query) = location.split_once('?').unwrap_or((&location, ""));
    assert_eq!(target, client.post_logout_redirect_uri);
    assert_eq!(
        edgeid_suite::parse_params(query).get("state"),
        Some(&state),
        "§3: state is passed back"
    );
    assert!(
        browser.cookie("edgeid_session").is_none(),
        "the session cookie is cleared"
    );
    assert_logged_out(&browser, &client);
}

/// The session is ended on the server, not only in the browser: replaying the old session
/// cookie does not bring it back.
#[test]
fn logout_ends_the_session_server_side() {
    let (client, _user, browser, cf) = logged_in();
    let cookie = browser.cookie("edgeid_session").expect("a session cookie");
    let q = form(&[
        ("id_token_hint", cf.id_token()),
        ("post_logout_redirect_uri", &client.post_logout_redirect_uri),
    ]);
    let resp = browser.get(&format!("/oauth2/sessions/logout?{q}"));
    assert_eq!(resp.status, 303, "{}", resp.text());

    let replay = Browser::new();
    let req = client.auth_request().set("prompt", "none");
    let resp = replay.send(
        "GET",
        &format!("/oauth2/auth?{}", req.query()),
        &[("cookie", &format!("edgeid_session={cookie}"))],
        None,
    );
    let cb = callback_of(&resp)
        .unwrap_or_else(|| panic!("expected a redirect, got {}: {}", resp.status, resp.text()));
    assert_eq!(cb.error(), "login_required");
}

/// §3: an unregistered post_logout_redirect_uri must not be redirected to.
#[test]
fn logout_to_an_unregistered_uri_does_not_redirect() {
    let (_client, _user, browser, cf) = logged_in();
    let q = form(&[
        ("id_token_hint", cf.id_token()),
        (
            "post_logout_redirect_uri",
            "https://attacker.example.test/bye",
        ),
        ("state", "s"),
    ]);
    let resp = browser.get(&format!("/oauth2/sessions/logout?{q}"));
    assert!(
        resp.header("location")
            .is_none_or(|l| is_provider_url(&resolve(l))),
        "no redirect off the provider: {:?}",
        resp.header("location")
    );
    assert!(!resp.text().contains("https://attacker.example.test/bye?"));
    assert!(
        matches!(resp.status, 200 | 400),
        "{}: {}",
        resp.status,
        resp.text()
    );
}

/// §2: without an id_token_hint the OP asks the user to confirm; confirming ends the session.
#[test]
fn logout_without_hint_asks_for_confirmation() {
    let (client, _user, browser, _cf) = logged_in();
    let resp = browser.get("/oauth2/sessions/logout");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    let html = resp.text();
    let f = forms(&html)
        .into_iter()
        .find(|f| {
            f.method == "post" && resolve(&f.action).starts_with(&format!("{}/logout", base()))
        })
        .unwrap_or_else(|| panic!("a confirmation form posting to /logout: {html}"));
    // Nothing happened yet: the page alone does not log out.
    assert_still_logged_in(&browser, &client);

    let mut pairs: Vec<(&str, &str)> = f
        .fields
        .iter()
        .filter(|(_, _, t)| t == "hidden")
        .map(|(n, v, _)| (n.as_str(), v.as_str()))
        .collect();
    assert!(
        !pairs.is_empty(),
        "the form carries a csrf/request token: {f:?}"
    );
    // A browser sends the name/value of the button clicked: the first submit button.
    if let Some((n, v, _)) = f.fields.iter().find(|(_, _, t)| t == "submit") {
        pairs.push((n.as_str(), v.as_str()));
    }
    let done = browser.post_form(&f.action, &pairs);
    assert!(
        matches!(done.status, 200 | 303),
        "{}: {}",
        done.status,
        done.text()
    );
    assert_logged_out(&browser, &client);
}

/// The confirmation form is bound to the browser: the same form posted from another browser
/// without its cookies does not end the victim's session (CSRF).
#[test]
fn logout_confirmation_is_not_forgeable_by_another_browser() {
    let (client, _user, browser, _cf) = logged_in();
    let attacker = Browser::new();
    let page = attacker.get("/oauth2/sessions/logout");
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    if let Some(f) = forms(&html).into_iter().find(|f| f.method == "post") {
        let mut pairs: Vec<(&str, &str)> = f
            .fields
            .iter()
            .filter(|(_, _, t)| t == "hidden")
            .map(|(n, v, _)| (n.as_str(), v.as_str()))
            .collect();
        if let Some((n, v, _)) = f.fields.iter().find(|(_, _, t)| t == "submit") {
            pairs.push((n.as_str(), v.as_str()));
        }
        // The victim's browser posts the attacker's form (a cross-site form post carries the
        // victim's cookies but not the attacker's token binding).
        let _ = browser.post_form(&f.action, &pairs);
    }
    assert_still_logged_in(&browser, &client);
}

/// An id_token_hint for a client whose post_logout_redirect_uri is another client's is refused
/// (§3: the URI must be registered for the client the hint names).
#[test]
fn logout_uri_of_another_client_does_not_redirect() {
    let (_client, _user, browser, cf) = logged_in();
    let other = create_oidc_client(json!({}));
    let q = form(&[
        ("id_token_hint", cf.id_token()),
        ("post_logout_redirect_uri", &other.post_logout_redirect_uri),
    ]);
    let resp = browser.get(&format!("/oauth2/sessions/logout?{q}"));
    assert!(
        resp.header("location")
            .is_none_or(|l| is_provider_url(&resolve(l))),
        "{:?}",
        resp.header("location")
    );
}
