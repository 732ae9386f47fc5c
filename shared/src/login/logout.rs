//! OpenID Connect RP-Initiated Logout 1.0: the `end_session_endpoint`
//! (`/oauth2/sessions/logout`, also `/logout`).
//!
//! §2: `post_logout_redirect_uri` is honoured only when it is registered for the client named
//! by `client_id` or by the `id_token_hint`'s audience, and never redirected to otherwise.
//! §3: when the request is not verifiable (no valid hint for the current session's user), the
//! user is asked to confirm; the confirmation form carries a sealed copy of the request bound
//! to the session, so it cannot be forged cross-site.

use http::header;
use serde::{Deserialize, Serialize};

use super::pages;
use crate::authorize::complete;
use crate::client;
use crate::config::{self, Settings};
use crate::error::OAuthError;
use crate::ports::UnixTime;
use crate::session::{self, Session};
use crate::{Ports, Request, Response, audit, web};

const SEAL_CONTEXT: &str = "edgeid/logout/v1";

#[derive(Serialize, Deserialize)]
struct Pending {
    redirect: Option<String>,
    state: Option<String>,
    session: String,
    exp: UnixTime,
}

pub async fn handle<P: Ports>(
    ports: &P,
    settings: &Settings,
    req: &Request,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let form = web::Form::from_request(req)?;
    let current = session::current(ports.sql(), req, now).await?;
    if form.contains("request") && req.uri().path() == "/logout" {
        return confirmed(ports, settings, &form, current, now).await;
    }

    // The hint: an ID token we issued (expired is fine: §2 "the OP ... SHOULD accept ID
    // Tokens ... when the ... expiration time has passed").
    let hint = match form.get("id_token_hint") {
        Some(h) => Some(complete::verify_id_token(ports, settings, h, now).await?),
        None => None,
    };
    let hint_aud = hint.as_ref().and_then(|c| match &c["aud"] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) => a.first().and_then(|v| v.as_str()).map(str::to_owned),
        _ => None,
    });
    let client_id = match (form.get("client_id"), hint_aud.as_deref()) {
        (Some(c), Some(a)) if c != a => {
            return Err(OAuthError::invalid_request(
                "The client_id does not match the id_token_hint.",
            ));
        }
        (Some(c), _) => Some(c.to_owned()),
        (None, a) => a.map(str::to_owned),
    };
    let redirect = match form.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = match &client_id {
                Some(id) => client::load_cached(ports, id, now)
                    .await?
                    .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|u| u == uri)),
                None => false,
            };
            if !registered {
                return Err(OAuthError::invalid_request(
                    "The post_logout_redirect_uri is not registered for this client.",
                ));
            }
            Some(uri.to_owned())
        }
    };
    let state = form.get("state").map(str::to_owned);

    let Some(current) = current else {
        // Nobody to sign out: finish as if it had happened.
        return Ok(finish(settings, redirect.as_deref(), state.as_deref()));
    };
    let verifiable = hint
        .as_ref()
        .is_some_and(|c| c["sub"].as_str() == Some(current.user_id.as_str()));
    if verifiable {
        end(ports, settings, &current, now).await?;
        let mut resp = finish(settings, redirect.as_deref(), state.as_deref());
        clear(&mut resp, settings);
        return Ok(resp);
    }
    let redirect_for_page = redirect.clone();
    let pending = Pending {
        redirect,
        state,
        session: current.token_sha256.clone(),
        exp: now + 600,
    };
    let plain = serde_json::to_vec(&pending).map_err(OAuthError::server)?;
    let sealed = config::kek(ports)?.seal(ports, SEAL_CONTEXT, &plain)?;
    Ok(pages::confirm_logout(
        settings,
        &sealed,
        redirect_for_page.as_deref(),
    ))
}

async fn confirmed<P: Ports>(
    ports: &P,
    settings: &Settings,
    form: &web::Form,
    current: Option<Session>,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let invalid = || OAuthError::invalid_request("This sign-out request has expired. Try again.");
    let sealed = form.get("request").ok_or_else(invalid)?;
    let plain = config::kek(ports)?
        .open(SEAL_CONTEXT, sealed)
        .map_err(|_| invalid())?;
    let pending: Pending = serde_json::from_slice(&plain).map_err(|_| invalid())?;
    if pending.exp <= now {
        return Err(invalid());
    }
    let Some(current) = current.filter(|c| c.token_sha256 == pending.session) else {
        // The session it was about has already ended.
        return Ok(finish(
            settings,
            pending.redirect.as_deref(),
            pending.state.as_deref(),
        ));
    };
    if form.get("decision") == Some("stay") {
        return Ok(pages::still_signed_in(settings));
    }
    end(ports, settings, &current, now).await?;
    let mut resp = finish(
        settings,
        pending.redirect.as_deref(),
        pending.state.as_deref(),
    );
    clear(&mut resp, settings);
    Ok(resp)
}

async fn end<P: Ports>(
    ports: &P,
    _settings: &Settings,
    s: &Session,
    now: UnixTime,
) -> Result<(), OAuthError> {
    session::end(ports.sql(), &s.token_sha256, now).await?;
    audit::record(
        ports.sql(),
        now,
        "logout",
        &s.user_id,
        serde_json::json!({ "sid": s.sid }),
    )
    .await;
    Ok(())
}

fn clear(resp: &mut Response, settings: &Settings) {
    resp.headers_mut().append(
        header::SET_COOKIE,
        session::clear_cookie(settings.issuer.secure_cookies()),
    );
}

/// §3: redirect to the validated URI with `state`, or show the signed-out page.
fn finish(settings: &Settings, redirect: Option<&str>, state: Option<&str>) -> Response {
    match redirect {
        Some(uri) => {
            let mut url = uri.to_owned();
            if let Some(state) = state {
                let mut s = form_urlencoded::Serializer::new(String::new());
                s.append_pair("state", state);
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(&s.finish());
            }
            web::see_other(&url)
        }
        None => pages::signed_out(settings),
    }
}
