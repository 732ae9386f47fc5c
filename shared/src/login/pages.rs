//! The login function's pages. Every value is escaped; labels are tied to their fields and
//! errors to the field they concern (`aria-describedby`).

use http::StatusCode;

use crate::Response;
use crate::client::Client;
use crate::config::Settings;
use crate::html::{self, escape};
use crate::user::User;

fn client_label(client: &Client) -> String {
    if client.client_name.is_empty() {
        client.client_id.clone()
    } else {
        client.client_name.clone()
    }
}

pub fn login(
    settings: &Settings,
    client: &Client,
    sealed: &str,
    identifier: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let context = format!(
        "to continue to <strong>{}</strong>",
        escape(&client_label(client))
    );
    let mut resp = sign_in(
        settings,
        "/login",
        ("request", sealed),
        &context,
        identifier,
        error,
        status,
    );
    html::allow_form_action(&mut resp, &client_form_actions(client));
    resp
}

/// The client's redirect origins: where a form on a page of its sign-in may end up.
pub fn client_form_actions(client: &Client) -> Vec<String> {
    html::form_action_sources(client.redirect_uris.iter().map(String::as_str))
}

/// The sign-in form: posts `identifier` and `password` with one hidden field (the sealed
/// request, or a CSRF token) to `action`. `context_html` is already escaped.
pub fn sign_in(
    settings: &Settings,
    action: &str,
    (hidden_name, hidden_value): (&str, &str),
    context_html: &str,
    identifier: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let error_html = error.map_or(String::new(), |e| {
        format!(
            "<p class=\"error\" id=\"login-error\" role=\"alert\">{}</p>",
            escape(e)
        )
    });
    let described = if error.is_some() {
        " aria-describedby=\"login-error\" aria-invalid=\"true\""
    } else {
        ""
    };
    let autofocus_id = if identifier.is_empty() {
        " autofocus"
    } else {
        ""
    };
    let autofocus_pw = if identifier.is_empty() {
        ""
    } else {
        " autofocus"
    };
    let body = format!(
        "<h1>Sign in</h1>\
         <p class=\"muted\">{context_html}</p>{error_html}\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"{hidden_name}\" value=\"{hidden_value}\">\
         <label for=\"identifier\">Username or email</label>\
         <input type=\"text\" id=\"identifier\" name=\"identifier\" value=\"{identifier}\" \
         autocomplete=\"username\" required{described}{autofocus_id}>\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" \
         autocomplete=\"current-password\" required{described}{autofocus_pw}>\
         <button type=\"submit\">Sign in</button></form>\
         <p><a href=\"/recovery\">Forgot your password?</a></p>",
        action = escape(action),
        hidden_name = escape(hidden_name),
        hidden_value = escape(hidden_value),
        identifier = escape(identifier),
    );
    html::response(
        status,
        html::page(&settings.instance_name, "Sign in", &body),
    )
}

/// The second step of a sign-in with TOTP enrolled (RFC 6238): a code from the authenticator
/// app, or one of the recovery codes.
pub fn second_factor(
    settings: &Settings,
    pending: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (error_html, described) = match error {
        Some(e) => (
            format!(
                "<p class=\"error\" id=\"code-error\" role=\"alert\">{}</p>",
                escape(e)
            ),
            " aria-invalid=\"true\" aria-describedby=\"code-hint code-error\"",
        ),
        None => (String::new(), " aria-describedby=\"code-hint\""),
    };
    let body = format!(
        "<h1>Two-step sign-in</h1>{error_html}\
         <form method=\"post\" action=\"/login/totp\">\
         <input type=\"hidden\" name=\"pending\" value=\"{pending}\">\
         <label for=\"code\">Authentication code</label>\
         <p class=\"muted hint\" id=\"code-hint\">The 6-digit code from your authenticator app, \
         or one of your recovery codes.</p>\
         <input type=\"text\" id=\"code\" name=\"code\" autocomplete=\"one-time-code\" \
         spellcheck=\"false\" required autofocus{described}>\
         <button type=\"submit\">Continue</button></form>",
        pending = escape(pending),
    );
    html::response(
        status,
        html::page(&settings.instance_name, "Two-step sign-in", &body),
    )
}

/// A human description of each scope (OIDC Core §5.4 for the standard ones).
fn describe(scope: &str) -> String {
    match scope {
        "openid" => "Sign you in with your account".to_owned(),
        "profile" => "See your name and username".to_owned(),
        "email" => "See your email address".to_owned(),
        "offline_access" | "offline" => "Stay connected when you are not using it".to_owned(),
        other => format!("Access “{other}”"),
    }
}

pub fn consent(
    settings: &Settings,
    client: &Client,
    app: Option<&crate::app::App>,
    user: &User,
    scope: &[String],
    sealed: &str,
) -> Response {
    let items: String = scope
        .iter()
        .map(|s| format!("<li>{}</li>", escape(&describe(s))))
        .collect();
    let body = format!(
        "<h1>Allow access?</h1>\
         <p><strong>{client}</strong>{app_url} asks to:</p><ul class=\"scopes\">{items}</ul>\
         <p class=\"muted\">Signed in as {who}.</p>\
         <form method=\"post\" action=\"/consent\">\
         <input type=\"hidden\" name=\"request\" value=\"{sealed}\">\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button> \
         <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>\
         </form>",
        client = escape(&app.map_or_else(|| client_label(client), |a| a.name.clone())),
        app_url = app.map_or(String::new(), |a| format!(
            " (<a href=\"{url}\">{url}</a>)",
            url = escape(&a.url)
        )),
        who = escape(&user.username),
        sealed = escape(sealed),
    );
    let mut resp = html::response(
        StatusCode::OK,
        html::page(&settings.instance_name, "Allow access", &body),
    );
    html::allow_form_action(&mut resp, &client_form_actions(client));
    resp
}

pub fn signed_out(settings: &Settings) -> Response {
    let body = "<h1>You are signed out</h1><p class=\"muted\">You can close this window.</p>";
    html::response(
        StatusCode::OK,
        html::page(&settings.instance_name, "Signed out", body),
    )
}

pub fn confirm_logout(settings: &Settings, sealed: &str, redirect: Option<&str>) -> Response {
    let body = format!(
        "<h1>Sign out?</h1>\
         <p>An application asked to sign you out of {instance}.</p>\
         <form method=\"post\" action=\"/logout\">\
         <input type=\"hidden\" name=\"request\" value=\"{sealed}\">\
         <button type=\"submit\" name=\"decision\" value=\"logout\">Sign out</button> \
         <button type=\"submit\" name=\"decision\" value=\"stay\" class=\"secondary\">Stay signed in</button>\
         </form>",
        instance = escape(&settings.instance_name),
        sealed = escape(sealed),
    );
    let mut resp = html::response(
        StatusCode::OK,
        html::page(&settings.instance_name, "Sign out", &body),
    );
    html::allow_form_action(&mut resp, &html::form_action_sources(redirect));
    resp
}

pub fn still_signed_in(settings: &Settings) -> Response {
    let body = "<h1>You are still signed in</h1><p class=\"muted\">You can close this window.</p>";
    html::response(
        StatusCode::OK,
        html::page(&settings.instance_name, "Signed in", body),
    )
}

/// "42 seconds", "3 minutes": for throttling messages.
pub fn duration(seconds: i64) -> String {
    match seconds {
        ..=1 => "1 second".to_owned(),
        2..=90 => format!("{seconds} seconds"),
        _ => format!("{} minutes", (seconds + 59) / 60),
    }
}
