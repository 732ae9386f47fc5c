//! Console pages: security views (issue 11 item 5).
//!
//! - `GET /admin/console/audit?kind=&user=&from=&to=&after=`: the audit log through
//!   [`audit::list`] with the [`audit::AuditQuery`] of `GET /admin/audit` (newest first, keyset
//!   paging on the event id); times are UTC, shown and entered as ISO 8601 (`2026-12-02T04:12Z`).
//! - `GET /admin/console/sessions?user=`: a user's live sessions; `POST .../sessions/end` ends
//!   one (`sid`) or all (`all=1`) through [`session::end_for_user`], which the settings page uses
//!   too (one `session.ended` event per session). The console's own cookie rests on a session,
//!   so ending it signs that browser out of the console and the settings pages.
//! - `GET /admin/console/keys`: signing keys ([`keys::list`]); rotating one algorithm
//!   ([`keys::rotate`], what `POST /admin/keys/rotate` calls) goes through a confirmation page
//!   that asks for a recent sign-in, and the POST checks it again.

use askama::Template;
use http::StatusCode;

use super::Ctx;
use crate::error::OAuthError;
use crate::jose::Alg;
use crate::ports::Ports;
use crate::session::{self, Ending};
use crate::time::{iso, parse_time};
use crate::{Request, Response, audit, keys, user, web};

/// Events per audit page.
const PAGE: i64 = 50;
/// The longest filter value taken (kinds and identifiers are short).
const MAX_FILTER: usize = 256;

pub async fn route<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    req: &Request,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let post = req.method() == http::Method::POST;
    let query = web::Form::from_query(req.uri().query())?;
    match (super::segments(req.uri().path()).as_slice(), post) {
        (["audit"], false) => audit_page(ports, ctx, &query).await,
        (["sessions"], false) => sessions_page(ports, ctx, &query).await,
        (["sessions", "end"], true) => end_sessions(ports, ctx, form).await,
        (["keys"], false) => keys_page(ports, ctx, &query).await,
        (["keys", "rotate"], false) => rotate_page(ctx, &query),
        (["keys", "rotate"], true) => rotate(ports, ctx, form).await,
        _ => Ok(web::not_found()),
    }
}

// --- audit ------------------------------------------------------------------------------

struct EventRow {
    id: i64,
    at: String,
    kind: String,
    subject: String,
    /// `subject`, percent-encoded for a query string.
    subject_q: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "console/security-audit.html")]
struct AuditPage<'a> {
    kind: &'a str,
    user: &'a str,
    from: &'a str,
    to: &'a str,
    error: Option<String>,
    events: Vec<EventRow>,
    /// The query string of the next (older) page, if any.
    older: Option<String>,
}

async fn audit_page<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    query: &web::Form,
) -> Result<Response, OAuthError> {
    let field = |name: &str| -> Result<&str, OAuthError> {
        Ok(query.get_bounded(name, MAX_FILTER)?.unwrap_or("").trim())
    };
    let (kind, user_filter, from_s, to_s) =
        (field("kind")?, field("user")?, field("from")?, field("to")?);
    let mut error = None;
    let mut time = |label: &str, s: &str| match s {
        "" => 0,
        s => parse_time(s).unwrap_or_else(|| {
            error = Some(format!(
                "{label} must be a UTC time like 2026-12-02 or 2026-12-02T04:12."
            ));
            0
        }),
    };
    let (from, to) = (time("From", from_s), time("To", to_s));
    let after = match query.get("after") {
        None => 0,
        Some(a) => a
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| OAuthError::invalid_request("after must be an event id"))?,
    };
    // As `GET /admin/audit`: a user may be named by id, username or email.
    let mut subject = user_filter.to_owned();
    if !subject.is_empty()
        && let Some(u) = user::resolve(ports.sql(), &subject).await?
    {
        subject = u.id;
    }
    let q = audit::AuditQuery {
        after,
        limit: PAGE,
        kind: kind.to_owned(),
        subject,
        from,
        to,
    };
    let list = audit::list(ports.sql(), &q).await?;
    let older = (list.len() as i64 == PAGE)
        .then(|| list.last().map(|e| e.id))
        .flatten()
        .map(|next| {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in [
                ("kind", kind),
                ("user", user_filter),
                ("from", from_s),
                ("to", to_s),
            ] {
                if !v.is_empty() {
                    s.append_pair(k, v);
                }
            }
            s.append_pair("after", &next.to_string());
            s.finish()
        });
    let events = list
        .into_iter()
        .map(|e| EventRow {
            id: e.id,
            at: iso(e.at),
            kind: e.kind,
            subject_q: query_value(&e.subject),
            subject: e.subject,
            detail: e.detail.to_string(),
        })
        .collect();
    Ok(ctx.render(
        StatusCode::OK,
        "Audit log",
        &AuditPage {
            kind,
            user: user_filter,
            from: from_s,
            to: to_s,
            error,
            events,
            older,
        },
    ))
}

// --- sessions ---------------------------------------------------------------------------

struct SessionRow {
    sid: String,
    created: String,
    auth_time: String,
    amr: String,
    expires: String,
    this: bool,
}

#[derive(Template)]
#[template(path = "console/security-sessions.html")]
struct SessionsPage<'a> {
    csrf: &'a str,
    user_id: &'a str,
    user_q: String,
    username: &'a str,
    notice: Option<&'static str>,
    sessions: Vec<SessionRow>,
}

async fn sessions_page<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    query: &web::Form,
) -> Result<Response, OAuthError> {
    let ident = query.get_bounded("user", MAX_FILTER)?.unwrap_or("");
    let Some(u) = user::resolve(ports.sql(), ident).await? else {
        return Ok(no_such_user(ctx));
    };
    let sessions = session::list_live(ports.sql(), &u.id, ctx.now)
        .await?
        .into_iter()
        .map(|l| SessionRow {
            this: l.session.sid == ctx.session.sid,
            created: iso(l.created_at),
            auth_time: iso(l.session.auth_time),
            amr: l.session.amr.join(", "),
            expires: iso(l.session.expires_at),
            sid: l.session.sid,
        })
        .collect();
    let notice = match query.get("done") {
        Some("one") => Some("The session was ended."),
        Some("all") => Some("All sessions of this user were ended."),
        Some("none") => Some("No session was ended: it had ended already."),
        _ => None,
    };
    Ok(ctx.render(
        StatusCode::OK,
        "Sessions",
        &SessionsPage {
            csrf: &ctx.csrf,
            user_id: &u.id,
            user_q: query_value(&u.id),
            username: &u.username,
            notice,
            sessions,
        },
    ))
}

fn no_such_user(ctx: &Ctx<'_>) -> Response {
    ctx.render(
        StatusCode::NOT_FOUND,
        "No such user",
        &super::Message {
            heading: "No such user",
            text: "There is no user with this id, username or email.",
            link: Some(("/admin/console/users", "All users")),
        },
    )
}

/// `POST /admin/console/sessions/end`: `user` and `sid`, or `user` and `all=1`.
async fn end_sessions<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let ident = form.get_bounded("user", MAX_FILTER)?.unwrap_or("");
    let Some(u) = user::resolve(ports.sql(), ident).await? else {
        return Ok(no_such_user(ctx));
    };
    let (which, done) = if form.get("all") == Some("1") {
        (Ending::All, "all")
    } else {
        let sid = form
            .get_bounded("sid", MAX_FILTER)?
            .ok_or_else(|| OAuthError::invalid_request("No session was named."))?;
        (Ending::Sid(sid), "one")
    };
    let ended = session::end_for_user(ports.sql(), &u.id, which, &ctx.session.sid, ctx.now).await?;
    let done = if ended.is_empty() { "none" } else { done };
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("user", &u.id).append_pair("done", done);
    Ok(web::see_other(&ctx.settings.issuer.endpoint(&format!(
        "/admin/console/sessions?{}",
        q.finish()
    ))))
}

// --- keys -------------------------------------------------------------------------------

struct KeyRow {
    alg: String,
    kid: String,
    state: String,
    created: String,
    published_until: String,
}

#[derive(Template)]
#[template(path = "console/security-keys.html")]
struct KeysPage {
    notice: Option<String>,
    keys: Vec<KeyRow>,
    algs: Vec<&'static str>,
}

async fn keys_page<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    query: &web::Form,
) -> Result<Response, OAuthError> {
    let keys = keys::list(ports.sql())
        .await?
        .into_iter()
        .map(|k| KeyRow {
            alg: k.alg.as_str().to_owned(),
            kid: k.kid,
            published_until: match (k.state.as_str(), k.expires_at) {
                ("retired", Some(t)) => iso(t),
                ("retired", None) => "-".to_owned(),
                _ => "while in use".to_owned(),
            },
            state: k.state,
            created: iso(k.created_at),
        })
        .collect();
    let notice = query.get("rotated").and_then(Alg::parse).map(|a| {
        format!(
            "{} keys rotated: the next key signs now, a new next key is published.",
            a.as_str()
        )
    });
    Ok(ctx.render(
        StatusCode::OK,
        "Signing keys",
        &KeysPage {
            notice,
            keys,
            algs: Alg::ALL.iter().map(|a| a.as_str()).collect(),
        },
    ))
}

#[derive(Template)]
#[template(path = "console/security-rotate.html")]
struct RotatePage<'a> {
    csrf: &'a str,
    alg: &'a str,
}

fn alg_of(form: &web::Form) -> Result<Alg, OAuthError> {
    form.get("alg")
        .and_then(Alg::parse)
        .ok_or_else(|| OAuthError::invalid_request("alg must be ES256 or RS256"))
}

/// The confirmation page: a recent sign-in first (DESIGN.md: destructive actions).
fn rotate_page(ctx: &Ctx<'_>, query: &web::Form) -> Result<Response, OAuthError> {
    let alg = alg_of(query)?;
    let here = format!("/admin/console/keys/rotate?alg={}", alg.as_str());
    if let Some(resp) = ctx.require_recent(&here) {
        return Ok(resp);
    }
    Ok(ctx.render(
        StatusCode::OK,
        "Rotate signing keys",
        &RotatePage {
            csrf: &ctx.csrf,
            alg: alg.as_str(),
        },
    ))
}

async fn rotate<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let alg = alg_of(form)?;
    if let Some(resp) =
        ctx.require_recent(&format!("/admin/console/keys/rotate?alg={}", alg.as_str()))
    {
        return Ok(resp);
    }
    keys::rotate(ports, ctx.settings, ctx.now, alg).await?;
    audit::record(
        ports.sql(),
        ctx.now,
        "keys.rotated",
        &ctx.user.id,
        serde_json::json!({ "alg": alg.as_str(), "by": "console" }),
    )
    .await;
    Ok(web::see_other(&ctx.settings.issuer.endpoint(&format!(
        "/admin/console/keys?rotated={}",
        alg.as_str()
    ))))
}

/// A value percent-encoded for a query string (`application/x-www-form-urlencoded`).
fn query_value(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn issue11_iso_times_round_trip() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-14 22:13"), Some(1_700_000_000 - 20));
        assert_eq!(parse_time("2023-11-14"), Some(1_699_920_000));
        assert_eq!(parse_time("2024-02-29"), Some(1_709_164_800));
        for bad in [
            "",
            "2023-02-30",
            "2023-13-01",
            "2023-1-01",
            "2023-11-14T24:00",
            "x",
            "2023-11-14T1:2",
            "+023-11-14",
            "2023-11-14T22:13:20:01",
            "２０２３-11-14",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
