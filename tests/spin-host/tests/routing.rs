//! Spin's routing precedence, on the pure router and on the repository's own `spin.toml`.

use std::path::Path;

use edgeid_spin_host::manifest::App;
use edgeid_spin_host::routing::{Route, Router};

fn router(routes: &[(&str, &str)]) -> anyhow::Result<Router> {
    let routes = routes
        .iter()
        .map(|(r, c)| Route::parse(r, c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Router::new(routes))
}

fn component<'a>(r: &'a Router, path: &str) -> Option<&'a str> {
    r.route(path).map(|m| m.component)
}

#[test]
fn exact_beats_any_wildcard() -> anyhow::Result<()> {
    let r = router(&[
        ("/...", "fallback"),
        ("/api/...", "api"),
        ("/api/health", "health"),
    ])?;
    assert_eq!(component(&r, "/api/health"), Some("health"));
    assert_eq!(
        component(&r, "/api/health/"),
        Some("health"),
        "one trailing slash is ignored"
    );
    assert_eq!(component(&r, "/api/health/x"), Some("api"));
    Ok(())
}

#[test]
fn longest_wildcard_wins_whatever_the_order() -> anyhow::Result<()> {
    for routes in [
        [("/a/...", "short"), ("/a/b/...", "long")],
        [("/a/b/...", "long"), ("/a/...", "short")],
    ] {
        let r = router(&routes)?;
        assert_eq!(component(&r, "/a/b/c"), Some("long"));
        assert_eq!(component(&r, "/a/b"), Some("long"));
        assert_eq!(component(&r, "/a/x"), Some("short"));
        assert_eq!(component(&r, "/a"), Some("short"));
    }
    Ok(())
}

#[test]
fn wildcards_match_whole_segments_and_nothing_else_matches() -> anyhow::Result<()> {
    let r = router(&[("/admin/...", "admin"), ("/oauth2/token", "token")])?;
    assert_eq!(component(&r, "/administrator"), None);
    assert_eq!(component(&r, "/oauth2/token/extra"), None);
    assert_eq!(component(&r, "/oauth2"), None);
    assert_eq!(component(&r, "/"), None);
    Ok(())
}

#[test]
fn later_duplicate_route_wins() -> anyhow::Result<()> {
    let r = router(&[("/x", "first"), ("/x", "second")])?;
    assert_eq!(component(&r, "/x"), Some("second"));
    Ok(())
}

#[test]
fn match_carries_the_spin_header_values() -> anyhow::Result<()> {
    let r = router(&[("/admin/...", "admin"), ("/oauth2/token", "token")])?;
    let m = r
        .route("/admin/keys/rotate")
        .ok_or_else(|| anyhow::anyhow!("no match"))?;
    assert_eq!(m.raw_route, "/admin/...");
    assert_eq!(m.component_route, "/admin");
    assert_eq!(m.path_info, "/keys/rotate");
    let m = r
        .route("/oauth2/token")
        .ok_or_else(|| anyhow::anyhow!("no match"))?;
    assert_eq!(
        (m.raw_route, m.component_route, m.path_info.as_str()),
        ("/oauth2/token", "/oauth2/token", "")
    );
    Ok(())
}

/// The repository's manifest routes the DESIGN.md URL map to the right components.
#[test]
fn repository_manifest_routes_the_url_map() -> anyhow::Result<()> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spin.toml");
    let app = App::load(&manifest)?;
    let r = &app.router;
    assert_eq!(
        component(r, "/.well-known/openid-configuration"),
        Some("discovery")
    );
    assert_eq!(component(r, "/.well-known/jwks.json"), Some("discovery"));
    assert_eq!(component(r, "/oauth2/auth"), Some("authorize"));
    assert_eq!(component(r, "/oauth2/token"), Some("token"));
    assert_eq!(component(r, "/oauth2/revoke"), Some("token"));
    assert_eq!(component(r, "/oauth2/introspect"), Some("token"));
    assert_eq!(component(r, "/userinfo"), Some("userinfo"));
    for path in [
        "/login",
        "/consent",
        "/logout",
        "/oauth2/sessions/logout",
        "/assets/edgeid.css",
    ] {
        assert_eq!(component(r, path), Some("login"), "{path}");
    }
    assert_eq!(component(r, "/admin"), Some("admin"));
    assert_eq!(component(r, "/admin/clients/abc"), Some("admin"));
    assert_eq!(component(r, "/recovery"), Some("recovery"));
    assert_eq!(component(r, "/recovery/password"), Some("recovery"));
    assert_eq!(component(r, "/.well-known/other"), None);
    assert_eq!(component(r, "/oauth2/other"), None);
    assert_eq!(component(r, "/userinfo/x"), None);
    assert_eq!(component(r, "/loginx"), None);
    Ok(())
}

/// Least privilege in the repository's manifest: only login, recovery and admin may open the
/// credentials database (password hashes, recovery-token digests); every function has the main
/// database and the KV cache.
#[test]
fn repository_manifest_grants_credentials_only_to_login_recovery_and_admin() -> anyhow::Result<()> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spin.toml");
    let app = App::load(&manifest)?;
    let ids: Vec<&str> = app.components.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        [
            "admin",
            "authorize",
            "discovery",
            "login",
            "recovery",
            "token",
            "userinfo"
        ]
    );
    for (id, c) in &app.components {
        let expected: &[&str] = match id.as_str() {
            "login" | "recovery" | "admin" => &["default", "credentials"],
            _ => &["default"],
        };
        assert_eq!(c.sqlite_databases, expected, "{id}");
        assert_eq!(c.key_value_stores, ["default"], "{id}");
        assert_eq!(
            c.variables.contains_key("admin_token"),
            id == "admin",
            "{id}: admin_token"
        );
        assert_eq!(
            c.variables.contains_key("key_encryption_key"),
            // recovery opens TOTP secrets (a link asks for the code first, issue 9).
            !matches!(id.as_str(), "discovery" | "userinfo"),
            "{id}: key_encryption_key"
        );
    }
    Ok(())
}
