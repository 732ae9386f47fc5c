//! Mail: the recovery-link message (plain text and HTML, every value escaped) and the request
//! the Mailer port sends to the operator's mail API (issue 4).
//!
//! Two request formats, chosen by `mail_format`:
//! - `webhook` (default): a generic JSON POST `{"from", "to", "subject", "text", "html"}` with
//!   `Authorization: Bearer <mail_api_token>`, for a relay of the operator's own;
//! - `postmark`: Postmark's single-message API (`POST https://api.postmarkapp.com/email`,
//!   `{"From", "To", "Subject", "TextBody", "HtmlBody", "MessageStream"}`, authenticated with
//!   `X-Postmark-Server-Token`), as its "Sending email with API" guide documents.
//!
//! The core only builds the request; each host sends it with its own HTTP client
//! ([`crate::ports::Ports::fetch`]), so no mail rule lives in an adapter.

use http::{HeaderValue, Method, header};

use crate::html::escape;
use crate::ports::{Config, OutboundRequest, OutboundResponse, PortError, UnixTime};

/// Names of the mail variables (Spin variables, Worker vars/secrets, `edgeid serve` flags).
pub mod var {
    /// The mail API endpoint; mail is off while it is unset or empty. `https://` (plain
    /// `http://` only on loopback, for tests).
    pub const MAIL_API_URL: &str = "mail_api_url";
    /// The API's credential (secret): a bearer token (`webhook`) or a Postmark server token.
    pub const MAIL_API_TOKEN: &str = "mail_api_token";
    /// `webhook` (default) or `postmark`.
    pub const MAIL_FORMAT: &str = "mail_format";
    /// The sender address, `name@example.com` or `Name <name@example.com>`.
    pub const MAIL_FROM: &str = "mail_from";
}

/// One message to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The JSON shape of the mail API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailFormat {
    Webhook,
    Postmark,
}

impl MailFormat {
    pub fn parse(raw: &str) -> Result<MailFormat, PortError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "" | "webhook" => Ok(MailFormat::Webhook),
            "postmark" => Ok(MailFormat::Postmark),
            other => Err(PortError::other(format!(
                "variable 'mail_format' must be webhook or postmark, got {other:?}"
            ))),
        }
    }
}

/// The mail API as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    pub url: url::Url,
    pub token: String,
    pub format: MailFormat,
    pub from: String,
}

fn nonempty<C: Config + ?Sized>(config: &C, name: &str) -> Option<String> {
    config
        .var(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl MailSettings {
    /// `None` when no mail API is configured (`mail_api_url` unset or empty); an error when it
    /// is configured wrongly.
    pub fn load<C: Config + ?Sized>(config: &C) -> Result<Option<MailSettings>, PortError> {
        let Some(raw) = nonempty(config, var::MAIL_API_URL) else {
            return Ok(None);
        };
        let url = url::Url::parse(&raw)
            .map_err(|e| PortError::other(format!("variable 'mail_api_url': {e}")))?;
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if !(url.scheme() == "https" || url.scheme() == "http" && loopback) {
            return Err(PortError::other(
                "variable 'mail_api_url' must be an https URL (http only on loopback)",
            ));
        }
        let from = nonempty(config, var::MAIL_FROM)
            .ok_or_else(|| PortError::other("variable 'mail_from' is not set"))?;
        Ok(Some(MailSettings {
            url,
            token: nonempty(config, var::MAIL_API_TOKEN).unwrap_or_default(),
            format: MailFormat::parse(&config.var(var::MAIL_FORMAT).unwrap_or_default())?,
            from,
        }))
    }
}

/// The request that hands `mail` to the configured API.
pub fn api_request<C: Config + ?Sized>(
    config: &C,
    mail: &Mail,
) -> Result<OutboundRequest, PortError> {
    let settings =
        MailSettings::load(config)?.ok_or_else(|| PortError::other("mail is not configured"))?;
    let (body, auth) = match settings.format {
        MailFormat::Webhook => (
            serde_json::json!({
                "from": settings.from,
                "to": mail.to,
                "subject": mail.subject,
                "text": mail.text,
                "html": mail.html,
            }),
            (!settings.token.is_empty())
                .then(|| (header::AUTHORIZATION, format!("Bearer {}", settings.token))),
        ),
        MailFormat::Postmark => (
            serde_json::json!({
                "From": settings.from,
                "To": mail.to,
                "Subject": mail.subject,
                "TextBody": mail.text,
                "HtmlBody": mail.html,
                "MessageStream": "outbound",
            }),
            Some((
                header::HeaderName::from_static("x-postmark-server-token"),
                settings.token.clone(),
            )),
        ),
    };
    let mut builder = http::Request::builder()
        .method(Method::POST)
        .uri(settings.url.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json");
    if let Some((name, value)) = auth {
        let value = HeaderValue::from_str(&value).map_err(|_| {
            PortError::other("variable 'mail_api_token' is not a valid header value")
        })?;
        builder = builder.header(name, value);
    }
    builder
        .body(body.to_string().into_bytes())
        .map_err(|e| PortError::other(format!("mail request: {e}")))
}

/// Any 2xx is delivery accepted; anything else is a failure whose start goes to the logs.
pub fn check_response(response: &OutboundResponse) -> Result<(), PortError> {
    if response.status().is_success() {
        return Ok(());
    }
    let body = String::from_utf8_lossy(response.body());
    let excerpt: String = crate::web::printable(&body).chars().take(200).collect();
    Err(PortError::other(format!(
        "mail API answered {}: {excerpt}",
        response.status()
    )))
}

/// Is a mail API configured (correctly or not)?
pub fn is_configured<C: Config + ?Sized>(config: &C) -> bool {
    nonempty(config, var::MAIL_API_URL).is_some()
}

/// What a recovery mail says.
#[derive(Debug, Clone)]
pub struct RecoveryMail<'a> {
    pub instance: &'a str,
    pub to: &'a str,
    /// The username, so the reader knows which account the link is for.
    pub username: &'a str,
    pub link: &'a str,
    /// A first password for a new account (else a reset).
    pub welcome: bool,
    pub now: UnixTime,
    pub expires_at: UnixTime,
}

impl RecoveryMail<'_> {
    pub fn render(&self) -> Mail {
        let instance = single_line(self.instance);
        let (subject, intro) = if self.welcome {
            (
                format!("Set your password for {instance}"),
                format!("An account was created for you at {instance}."),
            )
        } else {
            (
                format!("Reset your password for {instance}"),
                format!("Someone asked to reset the password of your account at {instance}."),
            )
        };
        let action = if self.welcome {
            "To choose your password, open this link"
        } else {
            "To choose a new password, open this link"
        };
        let expiry = format!(
            "The link works once and expires in {} ({}).",
            duration(self.expires_at - self.now),
            utc(self.expires_at)
        );
        let ignore = if self.welcome {
            "If you did not expect this account, ignore this mail."
        } else {
            "If you did not ask for this, ignore this mail: your password stays as it is."
        };
        let username = single_line(self.username);
        let text = format!(
            "{intro}\n\nUsername: {username}\n\n{action}:\n\n{link}\n\n{expiry}\n\n{ignore}\n\n-- \n{instance}\n",
            link = self.link,
        );
        let html = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{subject}</title></head>\
             <body style=\"font-family:system-ui,sans-serif;line-height:1.5\">\
             <p>{intro}</p><p>Username: <strong>{username}</strong></p>\
             <p>{action}:</p><p><a href=\"{link}\">{link}</a></p>\
             <p>{expiry}</p><p style=\"color:#59636e\">{ignore}</p>\
             <p style=\"color:#59636e\">{instance}</p></body></html>\n",
            subject = escape(&subject),
            intro = escape(&intro),
            username = escape(&username),
            action = escape(action),
            link = escape(self.link),
            expiry = escape(&expiry),
            ignore = escape(ignore),
            instance = escape(&instance),
        );
        Mail {
            to: self.to.to_owned(),
            subject,
            text,
            html,
        }
    }
}

/// Control characters (a line break in a subject, say) become spaces.
fn single_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// "24 hours", "1 hour", "30 minutes".
pub fn duration(seconds: i64) -> String {
    let minutes = (seconds.max(60) + 59) / 60;
    match minutes {
        1 => "1 minute".to_owned(),
        m if m % 60 != 0 => format!("{m} minutes"),
        60 => "1 hour".to_owned(),
        m => format!("{} hours", m / 60),
    }
}

pub use crate::time::utc;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Vars(HashMap<&'static str, &'static str>);

    impl Config for Vars {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| (*v).to_owned())
        }
    }

    fn mail() -> Mail {
        Mail {
            to: "a@example.com".into(),
            subject: "S".into(),
            text: "T".into(),
            html: "<p>H</p>".into(),
        }
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(86_400), "24 hours");
        assert_eq!(duration(3600), "1 hour");
        assert_eq!(duration(1800), "30 minutes");
        assert_eq!(duration(5), "1 minute");
    }

    #[test]
    fn unconfigured_mail_is_refused_and_http_only_on_loopback() {
        let none = Vars(HashMap::new());
        assert!(!is_configured(&none));
        assert!(api_request(&none, &mail()).is_err());
        let remote_http = Vars(HashMap::from([
            (var::MAIL_API_URL, "http://mail.example.com/send"),
            (var::MAIL_FROM, "id@example.com"),
        ]));
        assert!(api_request(&remote_http, &mail()).is_err());
        let no_from = Vars(HashMap::from([(
            var::MAIL_API_URL,
            "https://m.example.com/",
        )]));
        assert!(api_request(&no_from, &mail()).is_err());
        let bad_format = Vars(HashMap::from([
            (var::MAIL_API_URL, "https://m.example.com/"),
            (var::MAIL_FROM, "id@example.com"),
            (var::MAIL_FORMAT, "smtp"),
        ]));
        assert!(api_request(&bad_format, &mail()).is_err());
    }

    #[test]
    fn postmark_request_carries_the_documented_fields_and_header() {
        let vars = Vars(HashMap::from([
            (var::MAIL_API_URL, "https://api.postmarkapp.com/email"),
            (var::MAIL_FROM, "id@example.com"),
            (var::MAIL_FORMAT, "postmark"),
            (var::MAIL_API_TOKEN, "server-token"),
        ]));
        let req = api_request(&vars, &mail()).unwrap();
        assert_eq!(req.uri(), "https://api.postmarkapp.com/email");
        assert_eq!(req.headers()["x-postmark-server-token"], "server-token");
        assert!(req.headers().get(header::AUTHORIZATION).is_none());
        let body: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"From": "id@example.com", "To": "a@example.com", "Subject": "S",
                               "TextBody": "T", "HtmlBody": "<p>H</p>", "MessageStream": "outbound"})
        );
    }

    #[test]
    fn recovery_mail_escapes_html_and_flattens_the_subject() {
        let m = RecoveryMail {
            instance: "Acme <b>\nID",
            to: "a@example.com",
            username: "<script>",
            link: "https://id.example.com/recovery?token=abc&x=\"",
            welcome: false,
            now: 0,
            expires_at: 3600,
        }
        .render();
        assert_eq!(m.subject, "Reset your password for Acme <b> ID");
        assert!(m.html.contains("Acme &lt;b&gt; ID"));
        assert!(m.html.contains("&lt;script&gt;"));
        assert!(!m.html.contains("<script>"));
        assert!(m.html.contains("token=abc&amp;x=&quot;"));
        assert!(m.text.contains("expires in 1 hour (1970-01-01 01:00 UTC)"));
    }
}
