//! Console pages: bulk create users from CSV (issue 11 item 2).
//!
//! - `GET /admin/console/import`: the upload form (a file, or text pasted; `multipart/form-data`,
//!   read by [`super::multipart`]).
//! - `POST /admin/console/import/preview`: every row with its parsed values and its errors
//!   (bad email or username, the same username/email twice in the file or already in the
//!   store, an unknown app, a bad role name). Writes nothing.
//! - `POST /admin/console/import/confirm`: the same checks again (the store may have changed
//!   since the preview), then every user and role in one all-or-nothing batch through
//!   [`user::import::create_all`], the plan `POST /admin/import/users` uses; a file with any
//!   bad row writes nothing. Welcome links are mailed when mail is configured, otherwise shown
//!   once on the answer page (never in a URL).
//!
//! The preview carries the file to the confirmation sealed (AEAD under the key-encryption key,
//! bound to the admin's session and expiring): what is confirmed is exactly what was
//! previewed, a confirmation form cannot be replayed from another sign-in, and base64url
//! needs no percent-encoding, so a file of [`MAX_CSV_BYTES`] fits one form value.
//!
//! Columns: `name, email, username, roles`; `roles` (optional) is a `;`-separated list of
//! `app:role` (`grafana:admin;wiki:user`). A first row naming the columns is a header and may
//! order them differently.

use askama::Template;
use http::{HeaderValue, StatusCode, header};

use super::Ctx;
use crate::error::OAuthError;
use crate::ports::{Ports, UnixTime};
use crate::user::UserInput;
use crate::user::import::{self as user_import, Creation, Outcome, Record, Welcome};
use crate::{Request, Response, app, client, config, mail, web};

/// The largest CSV taken: sealed (24-byte nonce, 16-byte tag, 8-byte expiry) and in base64url
/// it stays under one form value ([`web::limits::MAX_VALUE_BYTES`]).
pub const MAX_CSV_BYTES: usize = 24_000;
/// How long a preview can be confirmed.
const PREVIEW_TTL: i64 = 30 * 60;
const SEAL_CONTEXT: &str = "edgeid/console-import/v1";

pub async fn route<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    req: &Request,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let post = req.method() == http::Method::POST;
    match (super::segments(req.uri().path()).as_slice(), post) {
        (["import"], false) => Ok(upload_page(ctx, StatusCode::OK, None)),
        (["import", "preview"], true) => preview(ports, ctx, form).await,
        (["import", "confirm"], true) => confirm(ports, ctx, form).await,
        _ => Ok(web::not_found()),
    }
}

#[derive(Template)]
#[template(path = "console/import.html")]
struct UploadPage<'a> {
    csrf: &'a str,
    error: Option<String>,
    max_bytes: usize,
    max_rows: usize,
}

fn upload_page(ctx: &Ctx<'_>, status: StatusCode, error: Option<String>) -> Response {
    ctx.render(
        status,
        "Import users",
        &UploadPage {
            csrf: &ctx.csrf,
            error,
            max_bytes: MAX_CSV_BYTES,
            max_rows: user_import::MAX_BATCH,
        },
    )
}

/// One row as the preview shows it.
struct Row {
    line: usize,
    name: String,
    email: String,
    username: String,
    roles: String,
    errors: Vec<String>,
    /// After the write: the welcome link (shown once) or what happened to it.
    link: Option<String>,
    note: Option<String>,
}

#[derive(Template)]
#[template(path = "console/import-preview.html")]
struct PreviewPage<'a> {
    csrf: &'a str,
    rows: Vec<Row>,
    bad: usize,
    /// The sealed file, when every row is good.
    sealed: Option<String>,
    mail: bool,
    /// The confirmation found a problem the preview did not (the store changed).
    changed: bool,
}

#[derive(Template)]
#[template(path = "console/import-done.html")]
struct DonePage {
    rows: Vec<Row>,
    mailed: bool,
}

/// The CSV of the upload: the file if one was chosen, else the pasted text.
fn uploaded(form: &web::Form) -> Option<&str> {
    form.get("file")
        .filter(|f| !f.trim().is_empty())
        .or_else(|| form.get("csv"))
        .filter(|c| !c.trim().is_empty())
}

async fn preview<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let Some(csv) = uploaded(form) else {
        return Ok(upload_page(
            ctx,
            StatusCode::BAD_REQUEST,
            Some("Choose a CSV file or paste its text.".into()),
        ));
    };
    if csv.len() > MAX_CSV_BYTES {
        return Ok(too_large(ctx));
    }
    let rows = match check(ports, ctx.now, csv).await? {
        Ok(checked) => checked.rows,
        Err(e) => return Ok(upload_page(ctx, StatusCode::BAD_REQUEST, Some(e))),
    };
    let bad = rows.iter().filter(|r| !r.errors.is_empty()).count();
    let sealed = if bad == 0 {
        Some(seal(ports, ctx, csv)?)
    } else {
        None
    };
    Ok(ctx.render(
        if bad == 0 {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        },
        "Import users: preview",
        &PreviewPage {
            csrf: &ctx.csrf,
            rows,
            bad,
            sealed,
            mail: mail_configured(ports)?,
            changed: false,
        },
    ))
}

fn too_large(ctx: &Ctx<'_>) -> Response {
    upload_page(
        ctx,
        StatusCode::PAYLOAD_TOO_LARGE,
        Some(format!(
            "The file is larger than {MAX_CSV_BYTES} bytes: split it and import the parts one after another."
        )),
    )
}

fn mail_configured<P: Ports>(ports: &P) -> Result<bool, OAuthError> {
    Ok(mail::MailSettings::load(ports)?.is_some())
}

async fn confirm<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let csv = form
        .get("sealed")
        .and_then(|s| open(ports, ctx, s))
        .ok_or_else(|| {
            OAuthError::invalid_request(
                "This preview has expired or belongs to another sign-in: upload the file again.",
            )
        })?;
    let checked = match check(ports, ctx.now, &csv).await? {
        Ok(c) => c,
        Err(e) => return Ok(upload_page(ctx, StatusCode::BAD_REQUEST, Some(e))),
    };
    let mailed = mail_configured(ports)?;
    let how = if mailed { Welcome::Send } else { Welcome::Link };
    let (mut rows, creations) = (checked.rows, checked.creations);
    let bad = rows.iter().filter(|r| !r.errors.is_empty()).count();
    let items = if bad == 0 {
        user_import::create_all(ports, creations, true, how)
            .await
            .map_err(admin_error)?
    } else {
        Vec::new()
    };
    let refused: Vec<_> = items
        .iter()
        .enumerate()
        .filter(|(_, i)| i.outcome == Outcome::Refused)
        .collect();
    if bad > 0 || !refused.is_empty() {
        for (i, item) in refused {
            if let Some(r) = rows.get_mut(i) {
                r.errors.extend(item.reason.clone());
            }
        }
        let bad = rows.iter().filter(|r| !r.errors.is_empty()).count();
        return Ok(ctx.render(
            StatusCode::CONFLICT,
            "Import users: nothing written",
            &PreviewPage {
                csrf: &ctx.csrf,
                rows,
                bad,
                sealed: None,
                mail: mailed,
                changed: true,
            },
        ));
    }
    for (row, item) in rows.iter_mut().zip(items) {
        let not_mailed = item
            .notes
            .iter()
            .find(|n| n.starts_with("welcome link not mailed"));
        row.note = match (mailed, not_mailed) {
            (true, None) => Some("welcome link mailed".into()),
            (_, Some(n)) => Some(n.clone()),
            (false, None) => None,
        };
        if !mailed || not_mailed.is_some() {
            row.link = item.link;
        }
        if item.notes.iter().any(|n| n.starts_with("no welcome link")) {
            row.note = item.notes.first().cloned();
        }
    }
    let mut resp = ctx.render(
        StatusCode::OK,
        "Import users: done",
        &DonePage { rows, mailed },
    );
    // The links are secrets: no cache keeps the page.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

fn admin_error(e: crate::admin::AdminError) -> OAuthError {
    use crate::admin::AdminError;
    match e {
        AdminError::Server(e) => e,
        AdminError::InvalidRequest(m) | AdminError::Conflict(m) => OAuthError::invalid_request(m),
        other => OAuthError::server(format!("import: {other:?}")),
    }
}

/// Seals the CSV for the confirmation: `exp` (8 bytes, big-endian) then the file, bound to
/// this sign-in's session through the associated data.
fn seal<P: Ports>(ports: &P, ctx: &Ctx<'_>, csv: &str) -> Result<String, OAuthError> {
    let mut plain = (ctx.now + PREVIEW_TTL).to_be_bytes().to_vec();
    plain.extend_from_slice(csv.as_bytes());
    Ok(config::kek(ports)?.seal(ports, &seal_context(ctx), &plain)?)
}

fn seal_context(ctx: &Ctx<'_>) -> String {
    format!("{SEAL_CONTEXT}:{}", ctx.session.sid)
}

fn open<P: Ports>(ports: &P, ctx: &Ctx<'_>, sealed: &str) -> Option<String> {
    let plain = config::kek(ports)
        .ok()?
        .open(&seal_context(ctx), sealed)
        .ok()?;
    let (exp, csv) = plain.split_at_checked(8)?;
    let exp = UnixTime::from_be_bytes(exp.try_into().ok()?);
    (ctx.now < exp).then(|| String::from_utf8(csv.to_vec()).ok())?
}

/// The rows of a file and, for the good ones, what to create.
struct Checked {
    rows: Vec<Row>,
    /// One per row, in order, when every row is good (else empty).
    creations: Vec<Creation>,
}

/// Parses and checks the whole file: `Err` for a file that is no CSV of these columns (said
/// on the upload page), else every row with its errors.
async fn check<P: Ports>(
    ports: &P,
    now: UnixTime,
    csv: &str,
) -> Result<Result<Checked, String>, OAuthError> {
    let records = match parse_csv(csv) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    let (columns, body) = match columns(&records) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    if body.is_empty() {
        return Ok(Err("The file has no rows of users.".into()));
    }
    if body.len() > user_import::MAX_BATCH {
        return Ok(Err(format!(
            "The file has {} rows; at most {} are imported at once: split it.",
            body.len(),
            user_import::MAX_BATCH
        )));
    }
    let apps: Vec<String> = app::list(ports.sql())
        .await?
        .into_iter()
        .map(|a| a.slug)
        .collect();
    let mut rows = Vec::with_capacity(body.len());
    let mut creations = Vec::with_capacity(body.len());
    // Lower-cased email/username → the line that has it first.
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (line, fields) in body {
        let cell = |i: Option<usize>| {
            i.and_then(|i| fields.get(i))
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        let mut row = Row {
            line: *line,
            name: cell(columns.name),
            email: cell(Some(columns.email)),
            username: cell(Some(columns.username)),
            roles: cell(columns.roles),
            errors: Vec::new(),
            link: None,
            note: None,
        };
        if fields.len() != columns.count {
            row.errors.push(format!(
                "{} fields where the header has {}",
                fields.len(),
                columns.count
            ));
        }
        // The create rules of `POST /admin/users`.
        let input = UserInput {
            email: row.email.clone(),
            username: row.username.clone(),
            name: row.name.clone(),
            ..UserInput::default()
        };
        let id = client::random_uuid(ports)?;
        match input.validate(id.clone(), now) {
            Ok(_) => {
                for (what, value) in [("email", &row.email), ("username", &row.username)] {
                    let key = value.to_lowercase();
                    match seen.get(&key) {
                        Some(first) => row
                            .errors
                            .push(format!("{what} {value} is also on line {first}")),
                        None => {
                            seen.insert(key, row.line);
                        }
                    }
                }
            }
            Err(e) => row.errors.push(e.0),
        }
        let mut roles = Vec::new();
        for entry in row
            .roles
            .split(';')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let Some((slug, role)) = entry.split_once(':').map(|(a, r)| (a.trim(), r.trim()))
            else {
                row.errors
                    .push(format!("role {entry} is not app:role (like grafana:admin)"));
                continue;
            };
            if !apps.iter().any(|a| a == slug) {
                row.errors.push(format!("unknown app {slug}"));
            } else if !app::valid_name(role) {
                row.errors.push(format!(
                    "role {role} must be 1-64 characters of a-z, 0-9, '-' or '_'"
                ));
            } else if !roles.iter().any(|(s, r)| s == slug && r == role) {
                roles.push((slug.to_owned(), role.to_owned()));
            }
        }
        creations.push(Creation {
            record: Record {
                id,
                email: row.email.clone(),
                username: Some(row.username.clone()),
                name: row.name.clone(),
                ..Record::default()
            },
            roles,
        });
        rows.push(row);
    }
    // Names already in the store, for the rows good so far: the import's own plan, without
    // writing.
    let clean: Vec<usize> = (0..rows.len())
        .filter(|i| rows.get(*i).is_some_and(|r| r.errors.is_empty()))
        .collect();
    let items = user_import::create_all(
        ports,
        clean
            .iter()
            .filter_map(|i| creations.get(*i))
            .map(|c| Creation {
                record: c.record.clone(),
                roles: c.roles.clone(),
            })
            .collect(),
        false,
        Welcome::None,
    )
    .await
    .map_err(admin_error)?;
    for (i, item) in clean.iter().zip(&items) {
        if item.outcome == Outcome::Refused
            && let Some(row) = rows.get_mut(*i)
        {
            row.errors.extend(item.reason.clone());
        }
    }
    let creations = if rows.iter().any(|r| !r.errors.is_empty()) {
        Vec::new()
    } else {
        creations
    };
    Ok(Ok(Checked { rows, creations }))
}

/// Where each column is.
struct Columns {
    name: Option<usize>,
    email: usize,
    username: usize,
    roles: Option<usize>,
    count: usize,
}

/// The columns (from a header row, or the default order) and the data rows with their line.
#[allow(clippy::type_complexity)]
fn columns(records: &[(usize, Vec<String>)]) -> Result<(Columns, &[(usize, Vec<String>)]), String> {
    let Some((_, first)) = records.first() else {
        return Err("The file is empty.".into());
    };
    let names: Vec<String> = first
        .iter()
        .map(|f| f.trim().to_ascii_lowercase())
        .collect();
    let is_header = names.iter().any(|n| n == "email") && names.iter().any(|n| n == "username");
    if !is_header {
        let count = first.len().clamp(3, 4);
        return Ok((
            Columns {
                name: Some(0),
                email: 1,
                username: 2,
                roles: (count == 4).then_some(3),
                count,
            },
            records,
        ));
    }
    let mut found = [None; 4];
    for (i, n) in names.iter().enumerate() {
        let slot = match n.as_str() {
            "name" => 0,
            "email" => 1,
            "username" => 2,
            "roles" => 3,
            other => {
                return Err(format!(
                    "Unknown column {other:?}: the columns are name, email, username and roles."
                ));
            }
        };
        if found[slot].replace(i).is_some() {
            return Err(format!("The column {n} appears twice."));
        }
    }
    let [name, Some(email), Some(username), roles] = found else {
        return Err("The header must name the email and username columns.".into());
    };
    Ok((
        Columns {
            name,
            email,
            username,
            roles,
            count: names.len(),
        },
        records.get(1..).unwrap_or_default(),
    ))
}

/// RFC 4180 CSV: fields split by `,`, records by CRLF (or LF), fields in double quotes may
/// hold commas, line breaks and `""` for a quote. A UTF-8 byte order mark and blank lines are
/// skipped. Each record comes with its line number (of its first line). Linear, no panics.
pub fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let (mut line, mut start_line) = (1, 1);
    let mut quoted = false;
    // Whether the current field began with a quote (and so has ended at its closing quote).
    let mut was_quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            '"' => {
                return Err(format!(
                    "Line {line}: a quote inside a field that is not quoted."
                ));
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
                if !(fields.len() == 1 && fields[0].trim().is_empty()) {
                    records.push((start_line, std::mem::take(&mut fields)));
                }
                fields.clear();
                line += 1;
                start_line = line;
            }
            c if was_quoted && !c.is_whitespace() => {
                return Err(format!("Line {line}: text after a closing quote."));
            }
            c => field.push(c),
        }
    }
    if quoted {
        return Err(format!("Line {start_line}: a quoted field is not closed."));
    }
    fields.push(field);
    if !(fields.len() == 1 && fields[0].trim().is_empty()) {
        records.push((start_line, fields));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fields(csv: &str) -> Vec<Vec<String>> {
        parse_csv(csv)
            .unwrap()
            .into_iter()
            .map(|(_, f)| f)
            .collect()
    }

    #[test]
    fn issue11_csv_follows_rfc_4180() {
        assert_eq!(
            fields("a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\r\n"),
            vec![vec!["a", "b", "c"], vec!["x, y", "say \"hi\"", ""]]
        );
        assert_eq!(
            fields("\u{feff}a\n\nb,\"two\nlines\"\n"),
            vec![vec!["a"], vec!["b", "two\nlines"]]
        );
        let lines: Vec<usize> = parse_csv("a\n\"b\nc\"\nd")
            .unwrap()
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(lines, vec![1, 2, 4]);
        assert!(parse_csv("a,\"b").is_err());
        assert!(parse_csv("a,b\"c").is_err());
        assert!(parse_csv("a,\"b\"c").is_err());
        assert!(parse_csv("").unwrap().is_empty());
        for junk in ["\"", "\"\"\"", ",\r\r\n\"", "\u{0}\"\n\"\n"] {
            let _ = parse_csv(junk);
        }
    }

    #[test]
    fn issue11_a_header_names_the_columns() {
        let recs = parse_csv("username,email,roles\njo,jo@example.com,wiki:user").unwrap();
        let (c, body) = columns(&recs).unwrap();
        assert_eq!(
            (c.name, c.email, c.username, c.roles, c.count),
            (None, 1, 0, Some(2), 3)
        );
        assert_eq!(body.len(), 1);
        let recs = parse_csv("Jo,jo@example.com,jo").unwrap();
        let (c, body) = columns(&recs).unwrap();
        assert_eq!(
            (c.name, c.email, c.username, c.roles),
            (Some(0), 1, 2, None)
        );
        assert_eq!(body.len(), 1);
        assert!(columns(&parse_csv("name,email,username,phone").unwrap()).is_err());
        assert!(columns(&parse_csv("email,username,email").unwrap()).is_err());
    }
}
