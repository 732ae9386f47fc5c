//! What a person sees and does in a real browser: the login and consent pages, the
//! authorization response reaching the relying party (query and form_post, with and without
//! JavaScript), cookies, the CSP, the stylesheet, logout, and a phone-sized window.

use edgeid_browser_tests::fantoccini::Locator;
use edgeid_browser_tests::{Browser, Options, RelyingParty, client_for, suite};
use suite::serde_json::json;

/// An authorization request as the browser opens it.
fn authorize_url(req: &suite::AuthRequest) -> String {
    format!("/oauth2/auth?{}", req.query())
}

#[tokio::test]
async fn code_flow_with_consent_ends_at_the_redirect_uri_with_a_code() {
    let rp = RelyingParty::start();
    let client = client_for(&rp, json!({}));
    let user = suite::create_user(json!({}));
    let req = client.auth_request().set("scope", "openid profile email");
    let b = Browser::start().await;

    b.goto(&authorize_url(&req)).await;
    let title = b.wait_title("Sign in").await;
    assert!(
        title.contains('·'),
        "the title names the instance: {title:?}"
    );
    let label = b.css("label[for=identifier]").await;
    assert_eq!(label.text().await.expect("label text"), "Username or email");
    assert!(
        b.has("input#identifier").await,
        "the label points at a field"
    );
    assert!(b.has("label[for=password]").await && b.has("input#password").await);
    let focused = b.client.active_element().await.expect("a focused element");
    assert_eq!(
        focused.attr("id").await.expect("id").as_deref(),
        Some("identifier"),
        "autofocus puts the caret in the identifier field"
    );

    b.sign_in(&user.username, &user.password).await;
    b.wait_title("Allow access").await;
    let scopes: Vec<String> = {
        let mut out = Vec::new();
        for li in b
            .client
            .find_all(suite_locator("ul.scopes li"))
            .await
            .expect("scope list")
        {
            out.push(li.text().await.expect("text"));
        }
        out
    };
    assert_eq!(
        scopes,
        [
            "Sign you in with your account",
            "See your name and username",
            "See your email address"
        ],
        "the consent page describes each scope"
    );
    assert!(b.text().await.contains("Browser RP"), "the app is named");
    b.css("button[value=allow]")
        .await
        .click()
        .await
        .expect("Allow");

    let at = b
        .wait_url("the redirect URI", |u| u.starts_with(&rp.redirect_uri()))
        .await;
    let hit = rp.callback().await;
    assert_eq!(hit.method, "GET");
    assert_eq!(
        hit.query.get("state").map(String::as_str),
        Some(req.state())
    );
    assert_eq!(
        hit.query.get("iss").map(String::as_str),
        Some(suite::base().as_str()),
        "RFC 9207 iss"
    );
    let code = hit.query.get("code").expect("a code").clone();
    assert!(at.contains(&format!("code={}", suite::form_encode(&code))) || at.contains(&code));

    let resp = client.exchange(&code, None);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let id_token = resp.json()["id_token"]
        .as_str()
        .expect("an ID token")
        .to_owned();
    let claims = suite::verify_id_token(&id_token, &client, req.nonce());
    assert_eq!(claims["sub"], user.id.as_str());
    b.quit().await;
}

fn suite_locator(css: &str) -> Locator<'_> {
    Locator::Css(css)
}

#[tokio::test]
async fn wrong_password_shows_an_error_tied_to_the_fields_and_sets_no_session() {
    let rp = RelyingParty::start();
    let client = client_for(&rp, json!({ "skip_consent": true }));
    let user = suite::create_user(json!({}));
    let req = client.auth_request();
    let b = Browser::start().await;

    b.goto(&authorize_url(&req)).await;
    b.sign_in(&user.username, "not-the-password").await;
    let error = b.css("#login-error").await;
    let message = error.text().await.expect("the error text");
    assert!(!message.trim().is_empty(), "the error says something");
    assert_eq!(
        error.attr("role").await.expect("role").as_deref(),
        Some("alert")
    );
    for field in ["#identifier", "#password"] {
        let el = b.css(field).await;
        assert_eq!(
            el.attr("aria-describedby").await.expect("attr").as_deref(),
            Some("login-error"),
            "{field} points at the error"
        );
        assert_eq!(
            el.attr("aria-invalid").await.expect("attr").as_deref(),
            Some("true")
        );
    }
    // The identifier is kept, so the caret goes to the password.
    let identifier = b.css("#identifier").await;
    assert_eq!(
        identifier.prop("value").await.expect("value").as_deref(),
        Some(user.username.as_str())
    );
    let focused = b.client.active_element().await.expect("focus");
    assert_eq!(
        focused.attr("id").await.expect("id").as_deref(),
        Some("password")
    );
    let names: Vec<String> = b
        .cookies()
        .await
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n == "edgeid_session"),
        "no session after a wrong password: {names:?}"
    );

    b.css("#password")
        .await
        .send_keys(&user.password)
        .await
        .expect("typing");
    b.css("form[action='/login'] button[type=submit]")
        .await
        .click()
        .await
        .expect("Sign in");
    b.wait_url("the redirect URI", |u| u.starts_with(&rp.redirect_uri()))
        .await;
    // Cookies are per host, not per port: the provider's cookie is visible from the RP page.
    let session = b
        .cookies()
        .await
        .into_iter()
        .find(|c| c.name() == "edgeid_session")
        .expect("a session cookie after signing in");
    assert_eq!(
        session.http_only(),
        Some(true),
        "the session cookie is HttpOnly"
    );
    assert!(
        b.js("return document.cookie")
            .await
            .as_str()
            .is_some_and(|c| !c.contains("edgeid_session")),
        "scripts cannot read the session cookie"
    );
    b.quit().await;
}

#[tokio::test]
async fn form_post_submits_itself_with_javascript() {
    let rp = RelyingParty::start();
    let client = client_for(&rp, json!({ "skip_consent": true }));
    let user = suite::create_user(json!({}));
    let req = client.auth_request().set("response_mode", "form_post");
    let b = Browser::start().await;

    b.goto(&authorize_url(&req)).await;
    b.sign_in(&user.username, &user.password).await;
    b.wait_url("the redirect URI", |u| u.starts_with(&rp.redirect_uri()))
        .await;
    let hit = rp.callback().await;
    assert_eq!(hit.method, "POST", "form_post POSTs to the client");
    assert!(
        hit.query.is_empty(),
        "nothing in the query: {:?}",
        hit.query
    );
    assert_eq!(hit.form.get("state").map(String::as_str), Some(req.state()));
    let code = hit.form.get("code").expect("a code in the form");
    let resp = client.exchange(code, None);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let csp: Vec<_> = b
        .console()
        .await
        .into_iter()
        .filter(|e| e.message.contains("Content Security Policy"))
        .collect();
    assert!(
        csp.is_empty(),
        "the form_post page ran under its CSP: {csp:?}"
    );
    b.quit().await;
}

#[tokio::test]
async fn form_post_without_javascript_continues_with_the_button() {
    let rp = RelyingParty::start();
    let client = client_for(&rp, json!({ "skip_consent": true }));
    let user = suite::create_user(json!({}));
    let req = client.auth_request().set("response_mode", "form_post");
    let b = Browser::with(Options { javascript: false }).await;

    b.goto(&authorize_url(&req)).await;
    b.sign_in(&user.username, &user.password).await;
    b.wait_title("Signing in").await;
    // Without JavaScript the page waits for the person.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        rp.hits().iter().all(|h| h.path != "/cb"),
        "nothing reached the client before the click"
    );
    assert!(b.title().await.starts_with("Signing in"));
    b.css("button[type=submit]")
        .await
        .click()
        .await
        .expect("Continue");
    let hit = rp.callback().await;
    assert_eq!(hit.method, "POST");
    assert_eq!(hit.form.get("state").map(String::as_str), Some(req.state()));
    let code = hit.form.get("code").expect("a code in the form");
    let resp = client.exchange(code, None);
    assert_eq!(resp.status, 200, "{}", resp.text());
    b.quit().await;
}

#[tokio::test]
async fn login_and_consent_pages_load_their_assets_without_csp_violations() {
    let rp = RelyingParty::start();
    let client = client_for(&rp, json!({}));
    let user = suite::create_user(json!({}));
    let req = client.auth_request().set("scope", "openid profile");
    let b = Browser::start().await;

    b.goto(&authorize_url(&req)).await;
    b.wait_title("Sign in").await;
    assert_styled(&b).await;
    assert_clean(&b, "login").await;

    b.sign_in(&user.username, &user.password).await;
    b.wait_title("Allow access").await;
    assert_styled(&b).await;
    assert_clean(&b, "consent").await;

    // The log does catch a violation: an inline script is refused under the page's CSP.
    b.js(
        "var s = document.createElement('script'); s.textContent = 'window.x = 1'; \
         document.body.appendChild(s); return null;",
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = b.console().await;
    assert!(
        log.iter()
            .any(|e| e.message.contains("Content Security Policy")),
        "an inline script shows up as a CSP error in the log: {log:?}"
    );
    assert_eq!(b.js("return window.x === undefined").await, json!(true));
    b.quit().await;
}

/// The stylesheet is applied: buttons carry the accent colour, not the browser's default.
async fn assert_styled(b: &Browser) {
    let bg = b
        .css("button")
        .await
        .css_value("background-color")
        .await
        .expect("computed style");
    assert!(
        !bg.is_empty() && bg != "rgba(0, 0, 0, 0)" && bg != "rgb(239, 239, 239)",
        "the button has the stylesheet's background, not {bg:?}"
    );
    let sheets = b
        .js("return Array.from(document.styleSheets).map(s => s.href)")
        .await;
    assert_eq!(
        sheets,
        json!([
            format!("{}/assets/edgeid.css", suite::base()),
            format!("{}/assets/theme.css", suite::base())
        ]),
        "the stylesheet and the instance's theme, both served by the provider"
    );
}

/// No CSP errors and nothing failed to load (the favicon aside: the provider serves none).
async fn assert_clean(b: &Browser, page: &str) {
    let bad: Vec<_> = b
        .console()
        .await
        .into_iter()
        .filter(|e| {
            e.message.contains("Content Security Policy")
                || (e.level == "SEVERE" && !e.message.contains("favicon.ico"))
        })
        .collect();
    assert!(bad.is_empty(), "the {page} page logged errors: {bad:?}");
}

#[tokio::test]
async fn logout_without_a_hint_asks_first_then_ends_the_session() {
    let rp = RelyingParty::start();
    let client = client_for(&rp, json!({ "skip_consent": true }));
    let user = suite::create_user(json!({}));
    let b = Browser::start().await;

    b.goto(&authorize_url(&client.auth_request())).await;
    b.sign_in(&user.username, &user.password).await;
    b.wait_url("the redirect URI", |u| u.starts_with(&rp.redirect_uri()))
        .await;

    b.goto("/oauth2/sessions/logout").await;
    b.wait_title("Sign out").await;
    assert!(b.text().await.contains("asked to sign you out"));
    b.css("button[value=logout]")
        .await
        .click()
        .await
        .expect("Sign out");
    b.wait_title("Signed out").await;
    assert!(
        !b.cookies()
            .await
            .iter()
            .any(|c| c.name() == "edgeid_session"),
        "the session cookie is gone"
    );

    let silent = client.auth_request().set("prompt", "none");
    b.goto(&authorize_url(&silent)).await;
    let url = b
        .wait_url("the redirect URI", |u| u.starts_with(&rp.redirect_uri()))
        .await;
    let params = suite::parse_params(url.split_once('?').map_or("", |(_, q)| q));
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("login_required"),
        "{url}"
    );
    assert_eq!(
        params.get("state").map(String::as_str),
        Some(silent.state())
    );
    b.quit().await;
}

#[tokio::test]
async fn login_form_fits_a_phone_screen() {
    let rp = RelyingParty::start();
    let client = client_for(&rp, json!({}));
    let b = Browser::start().await;
    b.client
        .set_window_size(375, 667)
        .await
        .expect("resizing the window");

    b.goto(&authorize_url(&client.auth_request())).await;
    b.wait_title("Sign in").await;
    let viewport = b
        .js("return document.documentElement.clientWidth")
        .await
        .as_f64()
        .expect("a width");
    assert!(
        viewport <= 375.0,
        "the viewport follows the window: {viewport}"
    );
    let scroll = b
        .js("return document.documentElement.scrollWidth")
        .await
        .as_f64()
        .expect("a width");
    assert!(
        scroll <= viewport,
        "no horizontal scrolling: content {scroll} > viewport {viewport}"
    );
    for sel in ["#identifier", "#password", "button[type=submit]"] {
        let (x, _, w, _) = b.css(sel).await.rectangle().await.expect("a rect");
        assert!(
            x >= 0.0 && x + w <= viewport,
            "{sel} spans {x}..{} in a {viewport}px viewport",
            x + w
        );
        if sel.starts_with('#') {
            assert!(w > viewport / 2.0, "{sel} is usably wide: {w}");
        }
    }
    b.quit().await;
}
