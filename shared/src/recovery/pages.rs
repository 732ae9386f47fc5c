//! The recovery function's pages. Every value is escaped; labels are tied to their fields and
//! errors to the fields they concern (`aria-describedby`).

use http::StatusCode;

use crate::Response;
use crate::config::Settings;
use crate::error::{ErrorCode, OAuthError};
use crate::html::{self, escape};
use crate::user::{MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};

fn error_html(id: &str, error: Option<&str>) -> (String, &'static str) {
    match error {
        Some(e) => (
            format!(
                "<p class=\"error\" id=\"{id}\" role=\"alert\">{}</p>",
                escape(e)
            ),
            " aria-invalid=\"true\"",
        ),
        None => (String::new(), ""),
    }
}

pub fn forgot(
    settings: &Settings,
    form_value: &str,
    identifier: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (error_html, invalid) = error_html("identifier-error", error);
    let described = if error.is_some() {
        "identifier-help identifier-error"
    } else {
        "identifier-help"
    };
    let body = format!(
        "<h1>Forgot your password?</h1>{error_html}\
         <form method=\"post\" action=\"/recovery\">\
         <input type=\"hidden\" name=\"form\" value=\"{form_value}\">\
         <label for=\"identifier\">Username or email</label>\
         <input type=\"text\" id=\"identifier\" name=\"identifier\" value=\"{identifier}\" \
         autocomplete=\"username\" required autofocus aria-describedby=\"{described}\"{invalid}>\
         <p class=\"muted\" id=\"identifier-help\">If an account matches, we send a link to its \
         email address to set a new password. The link works once, for one hour.</p>\
         <button type=\"submit\">Send the link</button></form>",
        form_value = escape(form_value),
        identifier = escape(identifier),
    );
    html::response(
        status,
        html::page(&settings.instance_name, "Forgot your password", &body),
    )
}

/// The one answer to every accepted forgot-form post.
pub fn sent(settings: &Settings) -> Response {
    let body = "<h1>Check your email</h1>\
         <p>If an account matches what you entered, we sent a link to its email address. \
         The link works once, for one hour.</p>\
         <p class=\"muted\">No mail? Check your spam folder, or ask your administrator for a \
         link.</p>";
    html::response(
        StatusCode::OK,
        html::page(&settings.instance_name, "Check your email", body),
    )
}

/// What the set-password form shows besides the password fields.
pub struct SetPasswordForm<'a> {
    pub token: &'a str,
    pub username: &'a str,
    /// The browser's form value (double-submit with [`super::FORM_COOKIE`]): the form is bound
    /// to the browser that opened the link, so a page elsewhere cannot post someone else's
    /// link into this browser and sign it in as that account (login CSRF).
    pub form_value: &'a str,
    /// The account has a second factor: its code (or a recovery code) is asked here, before
    /// the link is used and before any session exists.
    pub second_factor: bool,
}

pub fn set_password(
    settings: &Settings,
    f: &SetPasswordForm<'_>,
    error: Option<&str>,
    code_error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (code_error_html, code_invalid) = error_html("code-error", code_error);
    let (error_html, invalid) = error_html("password-error", error);
    let described = if error.is_some() {
        "password-rule password-error"
    } else {
        "password-rule"
    };
    let code_field = if f.second_factor {
        let code_described = if code_error.is_some() {
            "code-hint code-error"
        } else {
            "code-hint"
        };
        format!(
            "<label for=\"code\">Code from your authenticator app</label>\
             <input type=\"text\" id=\"code\" name=\"code\" autocomplete=\"one-time-code\" \
             inputmode=\"numeric\" maxlength=\"32\" required \
             aria-describedby=\"{code_described}\"{code_invalid}>\
             <p class=\"muted\" id=\"code-hint\">Your account has two-step sign-in: enter \
             the 6-digit code, or one of your recovery codes.</p>{code_error_html}"
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Set your password</h1>\
         <p class=\"muted\">for <strong>{username}</strong></p>{error_html}\
         <form method=\"post\" action=\"/recovery/password\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <input type=\"hidden\" name=\"form\" value=\"{form_value}\">\
         <input type=\"text\" name=\"username\" value=\"{username}\" autocomplete=\"username\" \
         hidden aria-hidden=\"true\" tabindex=\"-1\">\
         <label for=\"password\">New password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"new-password\" \
         minlength=\"{MIN_PASSWORD_LEN}\" maxlength=\"{MAX_PASSWORD_LEN}\" required autofocus \
         aria-describedby=\"{described}\"{invalid}>\
         <p class=\"muted\" id=\"password-rule\">{rule} A long passphrase of unrelated \
         words is strong and easy to remember; do not reuse a password from another site.</p>\
         <label for=\"confirm\">Repeat the password</label>\
         <input type=\"password\" id=\"confirm\" name=\"confirm\" autocomplete=\"new-password\" \
         required{invalid}>{code_field}\
         <button type=\"submit\">Set password</button></form>",
        username = escape(f.username),
        token = escape(f.token),
        form_value = escape(f.form_value),
        rule = escape(&crate::user::password_rule()),
    );
    html::response(
        status,
        html::page(&settings.instance_name, "Set your password", &body),
    )
}

pub fn password_set(settings: &Settings, username: &str) -> Response {
    let body = format!(
        "<h1>Password set</h1>\
         <p>Your password is set and you are signed in as <strong>{username}</strong>.</p>\
         <p><a href=\"{settings_url}\">Go to your account settings</a></p>",
        username = escape(username),
        settings_url = escape(&settings.issuer.endpoint("/settings")),
    );
    html::response(
        StatusCode::OK,
        html::page(&settings.instance_name, "Password set", &body),
    )
}

/// An unknown, used or expired link: the same page for all three.
pub fn link_invalid(settings: &Settings) -> Response {
    problem(
        settings,
        StatusCode::GONE,
        "This link no longer works",
        "The link was already used, has expired, or is not complete. Ask for a new one.",
        true,
    )
}

pub fn problem(
    settings: &Settings,
    status: StatusCode,
    title: &str,
    message: &str,
    offer_new_link: bool,
) -> Response {
    let again = if offer_new_link {
        "<p><a href=\"/recovery\">Ask for a new link</a></p>"
    } else {
        ""
    };
    let body = format!(
        "<h1>{title}</h1><p class=\"error\" role=\"alert\">{message}</p>{again}",
        title = escape(title),
        message = escape(message),
    );
    html::response(status, html::page(&settings.instance_name, title, &body))
}

/// A request the pages cannot serve: details to the logs for a server error, the public
/// description otherwise.
pub fn failure(instance: &str, err: OAuthError) -> Response {
    if let Some(internal) = &err.internal {
        crate::error::log_error(err.code, internal);
    }
    let (status, title, message) = if err.code == ErrorCode::ServerError {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The server could not complete the request. Try again later.".to_owned(),
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            "Request refused",
            err.description.to_string(),
        )
    };
    let body = format!(
        "<h1>{title}</h1><p class=\"error\" role=\"alert\">{}</p>",
        escape(&message)
    );
    html::response(status, html::page(instance, title, &body))
}
