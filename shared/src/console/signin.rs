//! Signing in to the console through edgeid's own authorization endpoint, as the built-in
//! public client [`CONSOLE_CLIENT_ID`] (RFC 6749 §4.1 with PKCE, RFC 7636 §4), and out again.
//!
//! - `GET /admin/console/login?next=...[&reauth=1]` draws a PKCE `code_verifier`, keeps it in
//!   a flow cookie, and sends the browser to `/oauth2/auth` with a sealed `state` that names
//!   the page to come back to and is bound to that cookie (RFC 6749 §10.12). `reauth=1` adds
//!   `prompt=login` (OIDC Core §3.1.2.1) for a destructive action: password again, and TOTP
//!   when enrolled.
//! - `GET /admin/console/callback` checks `state` and `iss` (RFC 9207 §2.4), redeems the code
//!   with the one conditional update every code redemption uses ([`grant::redeem_code`]:
//!   exactly one of N concurrent redemptions wins; a replay revokes the grant), checks the
//!   verifier against the stored challenge, and sets the console cookie: sealed, naming the
//!   edgeid session (`sid`) the sign-in made or used.
//! - `POST /admin/console/logout` ends that edgeid session (as `/logout` does) and clears the
//!   console cookie.

use http::{StatusCode, header};
use serde::{Deserialize, Serialize};

use super::Ctx;
use crate::client::{CONSOLE_CALLBACK_PATH, CONSOLE_CLIENT_ID};
use crate::config::{self, Settings};
use crate::crypto::{b64url, digest_eq, random_token, sha256, sha256_hex};
use crate::error::OAuthError;
use crate::grant::{self, Redeemed};
use crate::ports::{Ports, UnixTime};
use crate::session::{self, Session};
use crate::{Request, Response, audit, html, web};

/// The console's sign-in cookie: sealed `{sid, sub, exp}`. Its value also keys the console's
/// CSRF tokens ([`web::csrf_token`]).
pub const CONSOLE_COOKIE: &str = "edgeid_console";
/// The PKCE verifier of a console sign-in in progress.
const FLOW_COOKIE: &str = "edgeid_console_flow";
const SESSION_CONTEXT: &str = "edgeid/console-session/v1";
const STATE_CONTEXT: &str = "edgeid/console-state/v1";
/// The longest `next` kept across a sign-in.
const MAX_NEXT: usize = 512;

#[derive(Serialize, Deserialize)]
struct SealedSignIn {
    sid: String,
    sub: String,
    exp: UnixTime,
}

#[derive(Serialize, Deserialize)]
struct SealedState {
    /// SHA-256 of the flow cookie (the verifier).
    bind: String,
    next: String,
    exp: UnixTime,
}

/// A local path to come back to after the sign-in: absolute path, no scheme or authority
/// (`//host`, `/\host`), printable ASCII, bounded. Anything else becomes `/`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.len() <= MAX_NEXT
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The redirect to the console's sign-in, coming back to `next`.
pub fn redirect_to_sign_in(settings: &Settings, next: &str, reauth: bool) -> Response {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("next", &safe_next(Some(next)));
    if reauth {
        q.append_pair("reauth", "1");
    }
    web::see_other(
        &settings
            .issuer
            .endpoint(&format!("{}/login?{}", super::PREFIX, q.finish())),
    )
}

fn callback_uri(settings: &Settings) -> String {
    settings.issuer.endpoint(CONSOLE_CALLBACK_PATH)
}

/// RFC 7636 §4.2 `S256`.
fn challenge(verifier: &str) -> String {
    b64url(&sha256(verifier.as_bytes()))
}

/// `GET /admin/console/login`: to the authorization endpoint.
pub fn start<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let query = web::Form::from_query(req.uri().query())?;
    let next = safe_next(query.get("next"));
    let verifier = random_token(ports, 32)?;
    let state = SealedState {
        bind: sha256_hex(verifier.as_bytes()),
        next,
        exp: now + config::PENDING_REQUEST_TTL,
    };
    let plain = serde_json::to_vec(&state).map_err(OAuthError::server)?;
    let state = config::kek(ports)?.seal(ports, STATE_CONTEXT, &plain)?;
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", CONSOLE_CLIENT_ID)
        .append_pair("redirect_uri", &callback_uri(settings))
        .append_pair("scope", "openid")
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    if query.get("reauth") == Some("1") {
        q.append_pair("prompt", "login");
    }
    let mut resp = web::see_other(&format!(
        "{}?{}",
        settings.issuer.endpoint("/oauth2/auth"),
        q.finish()
    ));
    resp.headers_mut().append(
        header::SET_COOKIE,
        web::set_cookie(
            FLOW_COOKIE,
            &verifier,
            Some(config::PENDING_REQUEST_TTL),
            settings.issuer.secure_cookies(),
        ),
    );
    Ok(resp)
}

fn expired() -> OAuthError {
    OAuthError::invalid_request(
        "This console sign-in has expired or was started in another browser. Open the console \
         again to sign in.",
    )
}

/// `GET /admin/console/callback`: the authorization response (RFC 6749 §4.1.2).
pub async fn callback<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let q = web::Form::from_query(req.uri().query())?;
    let verifier = web::cookie(req, FLOW_COOKIE)
        .filter(|v| !v.is_empty())
        .ok_or_else(expired)?;
    let kek = config::kek(ports)?;
    let state: SealedState = q
        .get("state")
        .and_then(|s| kek.open(STATE_CONTEXT, s).ok())
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or_else(expired)?;
    if state.exp <= now || !digest_eq(&state.bind, &sha256_hex(verifier.as_bytes())) {
        return Err(expired());
    }
    // RFC 9207 §2.4: the response must come from this issuer.
    if q.get("iss")
        .is_some_and(|iss| iss != settings.issuer.as_str())
    {
        return Err(OAuthError::invalid_request(
            "The sign-in response came from another issuer.",
        ));
    }
    if let Some(error) = q.get("error") {
        return Err(OAuthError::invalid_request(format!(
            "The sign-in did not complete ({}). Open the console again to sign in.",
            web::printable(error)
        )));
    }
    let code = q
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(expired)?;
    let refused = || {
        OAuthError::invalid_request(
            "This sign-in link was already used or has expired. Open the console again to sign in.",
        )
    };
    let redeemed = match grant::redeem_code(ports.sql(), code, CONSOLE_CLIENT_ID, now).await? {
        Redeemed::Won(c) => c,
        Redeemed::Replayed { grant_id } => {
            // RFC 6749 §4.1.2: a reused code revokes what it issued.
            grant::revoke_grant(ports.sql(), &grant_id, now).await?;
            audit::record_replay(
                ports.sql(),
                now,
                "code.replay",
                &grant_id,
                CONSOLE_CLIENT_ID,
            )
            .await;
            return Err(refused());
        }
        Redeemed::Invalid => return Err(refused()),
    };
    // RFC 6749 §4.1.3 (redirect_uri) and RFC 7636 §4.6 (the verifier): a code obtained for
    // another redirect or without this browser's verifier is refused and its grant revoked.
    let callback = callback_uri(settings);
    let pkce_ok = redeemed
        .code_challenge
        .as_deref()
        .is_some_and(|c| digest_eq(c, &challenge(verifier)));
    if redeemed.redirect_uri.as_deref() != Some(callback.as_str()) || !pkce_ok {
        grant::revoke_grant(ports.sql(), &redeemed.grant_id, now).await?;
        return Err(refused());
    }
    let Some((g, false)) = grant::load_grant(ports.sql(), &redeemed.grant_id).await? else {
        return Err(refused());
    };
    let Some(s) = session::by_sid(ports.sql(), &g.sid, now)
        .await?
        .filter(|s| s.user_id == g.user_id)
    else {
        return Err(refused());
    };
    let sealed = SealedSignIn {
        sid: s.sid.clone(),
        sub: s.user_id.clone(),
        exp: s.expires_at,
    };
    let plain = serde_json::to_vec(&sealed).map_err(OAuthError::server)?;
    let cookie = kek.seal(ports, SESSION_CONTEXT, &plain)?;
    let secure = settings.issuer.secure_cookies();
    let mut resp = web::see_other(&settings.issuer.endpoint(&state.next));
    // One `Set-Cookie` per console response: spin-sdk 5.2 keeps only one per response
    // (`platform::spin`). The flow cookie is left to expire: its verifier belongs to a code
    // that is now used, and the next sign-in overwrites it.
    resp.headers_mut().append(
        header::SET_COOKIE,
        web::set_cookie(CONSOLE_COOKIE, &cookie, Some(s.expires_at - now), secure),
    );
    Ok(resp)
}

/// The live edgeid session behind the request's console cookie, if any.
pub async fn session<P: Ports>(
    ports: &P,
    req: &Request,
    now: UnixTime,
) -> Result<Option<Session>, OAuthError> {
    let Some(value) = web::cookie(req, CONSOLE_COOKIE).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let Some(sealed) = config::kek(ports)?
        .open(SESSION_CONTEXT, value)
        .ok()
        .and_then(|p| serde_json::from_slice::<SealedSignIn>(&p).ok())
        .filter(|s| s.exp > now)
    else {
        return Ok(None);
    };
    Ok(session::by_sid(ports.sql(), &sealed.sid, now)
        .await?
        .filter(|s| s.user_id == sealed.sub))
}

#[derive(askama::Template)]
#[template(path = "console/signed-out.html")]
struct SignedOut<'a> {
    instance: &'a str,
}

/// `POST /admin/console/logout`: ends the edgeid session the console rests on.
pub async fn logout<P: Ports>(ports: &P, ctx: &Ctx<'_>) -> Result<Response, OAuthError> {
    session::end(ports.sql(), &ctx.session.token_sha256, ctx.now).await?;
    audit::record(
        ports.sql(),
        ctx.now,
        "logout",
        &ctx.user.id,
        serde_json::json!({ "sid": ctx.session.sid, "via": "console" }),
    )
    .await;
    let page = askama::Template::render(&SignedOut {
        instance: &ctx.settings.instance_name,
    })
    .map_err(|e| OAuthError::server(format!("console template: {e}")))?;
    let mut resp = html::response(StatusCode::OK, page);
    // One `Set-Cookie` (see `callback`): the session cookie names an ended session now, which
    // every function treats as none.
    resp.headers_mut().append(
        header::SET_COOKIE,
        web::set_cookie(
            CONSOLE_COOKIE,
            "",
            Some(0),
            ctx.settings.issuer.secure_cookies(),
        ),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            safe_next(Some("/admin/console/users?q=a")),
            "/admin/console/users?q=a"
        );
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "x",
            "/a b",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(600)))), "/");
    }
}
