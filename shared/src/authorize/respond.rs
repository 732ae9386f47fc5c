//! Delivering an authorization response or error to the client's verified `redirect_uri`
//! (RFC 6749 §4.1.2, §4.1.2.1, §4.2.2; OAuth 2.0 Form Post Response Mode §2; RFC 9207 §2:
//! `iss` in every response, success or error).

use http::StatusCode;

use super::request::{ReplyTo, ResponseMode};
use crate::error::{OAuthError, log_error};
use crate::html::{self, escape};
use crate::{Response, web};

/// Sends `params` (plus `state` and `iss`) to the client in its response mode.
pub fn deliver(
    reply: &ReplyTo,
    issuer: &str,
    instance: &str,
    mut params: Vec<(&'static str, String)>,
) -> Response {
    if let Some(state) = &reply.state {
        params.push(("state", state.clone()));
    }
    params.push(("iss", issuer.to_owned()));
    match reply.response_mode {
        ResponseMode::Query => {
            let mut url = reply.redirect_uri.clone();
            let encoded = encode(&params);
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&encoded);
            web::see_other(&url)
        }
        ResponseMode::Fragment => {
            let url = format!("{}#{}", reply.redirect_uri, encode(&params));
            web::see_other(&url)
        }
        ResponseMode::FormPost => form_post(reply, instance, &params),
    }
}

/// Sends an error to the client (RFC 6749 §4.1.2.1). Internal reasons go to the log only.
pub fn deliver_error(reply: &ReplyTo, issuer: &str, instance: &str, err: OAuthError) -> Response {
    if let Some(internal) = &err.internal {
        log_error(err.code, internal);
    }
    deliver(
        reply,
        issuer,
        instance,
        vec![
            ("error", err.code.as_str().to_owned()),
            ("error_description", err.description.into_owned()),
        ],
    )
}

/// The HTML error page for an error that must not be redirected.
pub fn error_page(instance: &str, err: OAuthError) -> Response {
    if let Some(internal) = &err.internal {
        log_error(err.code, internal);
    }
    let status = if err.code == crate::ErrorCode::ServerError {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    html::error_page(instance, status, err.code.as_str(), &err.description)
}

fn encode(params: &[(&str, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Form Post Response Mode §2: an HTML form that POSTs the parameters to the client. A script
/// (same origin, no inline code under the CSP) submits it; the button does without JavaScript.
fn form_post(reply: &ReplyTo, instance: &str, params: &[(&str, String)]) -> Response {
    let mut inputs = String::new();
    for (k, v) in params {
        inputs.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(k),
            escape(v)
        ));
    }
    let body = format!(
        "<h1>Signing you in…</h1>\
         <form method=\"post\" action=\"{action}\">{inputs}\
         <p class=\"muted\">If you are not redirected, continue below.</p>\
         <button type=\"submit\">Continue</button></form>\
         <script src=\"{script}\"></script>",
        action = escape(&reply.redirect_uri),
        script = html::FORM_POST_SCRIPT_PATH,
    );
    let origin = url::Url::parse(&reply.redirect_uri)
        .ok()
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null");
    html::response_with_form_action(
        StatusCode::OK,
        html::page(instance, "Signing in", &body),
        Some(origin.as_deref().unwrap_or("*")),
    )
}
