//! The maintenance endpoint (issue 9, item 8): `POST /admin/maintenance/prune` runs one pruning
//! pass on the host — the schedule of Spin, where a Kubernetes CronJob calls it — and answers
//! what it deleted per table. It is an admin call like the others, and what it leaves is
//! usable. (What a pass deletes and when is proven with a fixed clock in
//! `shared/tests/prune.rs`; a black-box test cannot wait for a refresh token to expire.)

use edgeid_suite::serde_json::json;
use edgeid_suite::{
    Browser, Pkce, admin, callback_of, code_flow, create_oidc_client, create_user, oauth_error,
    request, userinfo_get,
};

const TABLES: [&str; 10] = [
    "authorization_codes",
    "refresh_tokens",
    "grants",
    "sessions",
    "revoked_access_tokens",
    "throttle",
    "login_locks",
    "audit_events",
    "signing_keys",
    "recovery_tokens",
];

#[test]
fn issue9_prune_needs_the_admin_token() {
    let resp = request("POST", "/admin/maintenance/prune", &[], None);
    assert_eq!(resp.status, 401, "{}", resp.text());
    assert!(
        resp.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer")),
        "{:?}",
        resp.headers
    );
    let resp = request(
        "POST",
        "/admin/maintenance/prune",
        &[("authorization", "Bearer not-the-admin-token")],
        None,
    );
    assert_eq!(resp.status, 401);
    // Only POST runs a pass.
    assert_eq!(admin("GET", "/maintenance/prune", None).status, 405);
    assert_eq!(admin("POST", "/maintenance/prunes", None).status, 404);
}

#[test]
fn issue9_prune_answers_a_summary_and_leaves_live_state_usable() {
    let client = create_oidc_client(json!({}));
    let user = create_user(json!({}));
    let browser = Browser::new();
    let flow = code_flow(&browser, &client, &user, "openid offline_access");

    let resp = admin("POST", "/maintenance/prune", None);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let summary = resp.json();
    for table in TABLES {
        assert!(
            summary["deleted"][table].is_u64(),
            "{table} is counted: {summary}"
        );
    }
    assert!(summary["complete"].is_boolean(), "{summary}");
    assert_eq!(summary["failed"], json!([]), "{summary}");

    // What was live before the pass still is: the access token, the refresh token, the
    // browser's session (no password asked), and a fresh sign-in.
    assert_eq!(userinfo_get(flow.access_token()).status, 200);
    let resp = client.refresh(flow.refresh_token());
    assert_eq!(resp.status, 200, "{}", resp.text());
    let req = client
        .auth_request()
        .set("scope", "openid")
        .set("prompt", "none")
        .pkce(&Pkce::s256());
    let cb = callback_of(&browser.authorize(&req)).expect("the session answers prompt=none");
    assert!(cb.param("code").is_some(), "a code, not {}", cb.error());
    let fresh = code_flow(&Browser::new(), &client, &user, "openid");
    assert_eq!(userinfo_get(fresh.access_token()).status, 200);

    // A second pass right away finds nothing of that to delete either.
    let again = admin("POST", "/maintenance/prune", None);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(userinfo_get(fresh.access_token()).status, 200);
    let reused = client.refresh(flow.refresh_token());
    assert_eq!(
        oauth_error(&reused),
        "invalid_grant",
        "the rotated token is still known as used, so its reuse is still detected"
    );
}
