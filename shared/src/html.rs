//! Server-rendered pages: escaping, the one layout, the stylesheet, and the headers every page
//! carries (a strict CSP without inline script, `frame-ancestors 'none'`, no referrer).
//!
//! Pages are small `format!` renderers over escaped values rather than a template engine: a
//! handful of pages did not justify a proc-macro dependency in every wasm build. Every value
//! from a request or a record passes through [`escape`].

use http::{HeaderValue, StatusCode, header};

use crate::Response;

/// HTML-escapes text for element content and double-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The stylesheet, served by the login function at [`STYLESHEET_PATH`].
pub const STYLESHEET_PATH: &str = "/assets/edgeid.css";
/// The instance's theme (`accent_color`), served by the login function: a stylesheet, since the
/// CSP allows no inline style.
pub const THEME_PATH: &str = "/assets/theme.css";

/// The theme stylesheet for `settings`.
pub fn theme_css(settings: &crate::config::Settings) -> String {
    match &settings.accent_color {
        Some(c) => format!(":root{{--accent:{c}}}\n"),
        None => String::new(),
    }
}

/// The script that submits a `form_post` response page (a button does it without JS).
pub const FORM_POST_SCRIPT_PATH: &str = "/assets/form_post.js";

pub const STYLESHEET: &str = r#":root{--accent:#3b5bdb;--fg:#1f2328;--muted:#59636e;--bg:#f6f8fa;--card:#fff;--err:#b3261e}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
img.logo{display:block;max-height:3rem;max-width:100%;margin:0 0 1rem}
main{max-width:26rem;margin:8vh auto;padding:2rem;background:var(--card);border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.4rem;margin:0 0 1rem}
p.muted{color:var(--muted)}
label{display:block;margin:1rem 0 .25rem;font-weight:600}
input[type=text],input[type=email],input[type=password]{width:100%;padding:.6rem;border:1px solid #8c959f;border-radius:6px;font:inherit}
input:focus,button:focus{outline:3px solid var(--accent);outline-offset:2px}
button{margin-top:1.25rem;padding:.6rem 1.2rem;border:0;border-radius:6px;background:var(--accent);color:#fff;font:inherit;cursor:pointer}
button.secondary{background:#e6e8eb;color:var(--fg)}
.error{color:var(--err);font-weight:600}
ul.scopes{padding-left:1.2rem}
h2{font-size:1.1rem;margin:2rem 0 .5rem;padding-top:1rem;border-top:1px solid #d0d7de}
p.hint{margin:0 0 .25rem;font-size:.9rem}
p.notice{padding:.6rem;border-radius:6px;background:#e6f4ea}
ul.items{list-style:none;padding:0}
ul.items li{display:flex;flex-wrap:wrap;gap:.5rem;justify-content:space-between;align-items:center;padding:.5rem 0;border-bottom:1px solid #eaeef2}
ul.items li button{margin-top:0}
ul.codes{columns:2;font-size:1.05rem}
a.button{display:inline-block;padding:.6rem 1.2rem;border-radius:6px;background:var(--accent);color:#fff;text-decoration:none}
figure.qr{margin:1rem 0}
figure.qr svg{width:200px;height:200px}
code.secret{word-break:break-all}
@media (max-width:30rem){main{margin:0;border-radius:0;min-height:100vh}}
a.skip{position:absolute;left:-999px}a.skip:focus{left:1rem;top:1rem;background:var(--card);padding:.5rem}
header.bar{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem;padding:.5rem 1rem;background:var(--card);border-bottom:1px solid #d0d7de}
header.bar img.logo{margin:0;max-height:2rem}
header.bar a.brand{font-weight:700;color:var(--fg);text-decoration:none}
header.bar nav ul{display:flex;flex-wrap:wrap;gap:.25rem 1rem;list-style:none;margin:0;padding:0;align-items:center}
header.bar form{margin:0}
button.link{margin:0;padding:0;background:none;color:var(--accent);text-decoration:underline}
main.wide{max-width:64rem;margin:1.5rem auto}
table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #eaeef2;vertical-align:top}
div.scroll{overflow-x:auto}
ul.apps{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(12rem,1fr));gap:1rem}
ul.apps li{border:1px solid #d0d7de;border-radius:8px;padding:1rem}
ul.apps a.app{display:flex;flex-direction:column;text-decoration:none;color:var(--fg)}
ul.apps img{max-height:2.5rem;max-width:100%;margin-bottom:.5rem}
ul.apps .name{font-weight:700}ul.apps .url,ul.apps .roles{color:var(--muted);font-size:.9rem}
form.inline{display:inline}form.inline button{margin-top:0}
select,textarea{width:100%;padding:.5rem;border:1px solid #8c959f;border-radius:6px;font:inherit}
label.inline{display:inline;margin:0;font-weight:400}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (max-width:30rem){main.wide{margin:0}}
"#;

pub const FORM_POST_SCRIPT: &str =
    "document.addEventListener('DOMContentLoaded',function(){document.forms[0].submit();});\n";

/// A complete page in the one layout.
pub fn page(instance: &str, title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · {instance}</title>\
         <link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}\">\
         <link rel=\"stylesheet\" href=\"{THEME_PATH}\"></head>\
         <body><main>{body}</main></body></html>\n",
        title = escape(title),
        instance = escape(instance),
    )
}

/// An HTML response with the security headers every page carries.
pub fn response(status: StatusCode, html: String) -> Response {
    response_with_form_action(status, html, None)
}

/// Like [`response`], with `form-action` widened to one more origin (the `form_post`
/// response page posts to the client).
pub fn response_with_form_action(
    status: StatusCode,
    html: String,
    extra_form_action: Option<&str>,
) -> Response {
    let mut resp = Response::new(html.into_bytes());
    *resp.status_mut() = status;
    let form_action = match extra_form_action {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' https:; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The error page shown where redirecting to the client would be unsafe (RFC 6749 §4.1.2.1:
/// an invalid `redirect_uri` or `client_id` MUST NOT redirect).
pub fn error_page(instance: &str, status: StatusCode, code: &str, description: &str) -> Response {
    let body = format!(
        "<h1>Sign-in request refused</h1>\
         <p class=\"error\" id=\"error\">{code}</p><p>{description}</p>\
         <p class=\"muted\">Return to the application and try again. If this keeps happening, \
         tell the application's administrator.</p>",
        code = escape(code),
        description = escape(description),
    );
    response(status, page(instance, "Error", &body))
}

/// CSP `form-action` sources for redirect URIs: the origin of an http(s) URI, the scheme of a
/// private-use one (`com.example.app:`).
pub fn form_action_sources<'a>(uris: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for uri in uris {
        let Ok(u) = url::Url::parse(uri) else {
            continue;
        };
        let source = match u.scheme() {
            "https" | "http" => u.origin().ascii_serialization(),
            scheme => format!("{scheme}:"),
        };
        if source != "null" && !out.contains(&source) {
            out.push(source);
        }
    }
    out
}

/// Widens a page's CSP `form-action` to `sources`. Browsers apply `form-action` to the
/// redirects that follow a form POST (CSP Level 3 §6.4.1), so a page whose form answers with a
/// 303 to the client (login, consent, logout) must name the client's origins.
pub fn allow_form_action(resp: &mut Response, sources: &[String]) {
    let Some(csp) = resp
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    let extra: String = sources.iter().map(|s| format!(" {s}")).collect();
    let widened = csp.replace("form-action 'self'", &format!("form-action 'self'{extra}"));
    if let Ok(v) = HeaderValue::from_str(&widened) {
        resp.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
}

/// Finishes a browser-facing response: the instance's logo at the top of a page, and RFC 6797
/// HSTS on an https issuer.
pub fn with_hsts(mut resp: Response, settings: &crate::config::Settings) -> Response {
    if let Some(logo) = &settings.logo_url
        && resp
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
    {
        let img = format!(
            "<main><img class=\"logo\" src=\"{}\" alt=\"{}\">",
            escape(logo),
            escape(&settings.instance_name)
        );
        let body = String::from_utf8_lossy(resp.body()).replacen("<main>", &img, 1);
        *resp.body_mut() = body.into_bytes();
    }
    if settings.issuer.secure_cookies() {
        resp.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    resp
}

/// A static asset response (long-cached: the paths never change meaning within a release).
pub fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = Response::new(body.as_bytes().to_vec());
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralizes_markup_and_attribute_breakouts() {
        assert_eq!(
            escape(r#"<script>"x"&'y'</script>"#),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn pages_carry_a_strict_csp() {
        let resp = response(StatusCode::OK, page("i", "t", "b"));
        let csp = resp.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
    }
}
