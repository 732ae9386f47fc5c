//! What an administrator does to a user, shared by the admin API (`/admin/users/...`) and the
//! console (`/admin/console/users/...`, issue 11): one function per operation, so both apply
//! the same rules and record the same audit events. The console adds who did it
//! ([`Actor::Console`]: `{"via": "console", "by": <admin id>}` in the event's detail). Roles
//! change through [`crate::admin::change_role_by`] (`edgeid role grant|revoke`).

use serde_json::{Value, json};

use crate::admin::AdminError;
use crate::config::Settings;
use crate::ports::{Ports, UnixTime};
use crate::recovery::{self, Issued, Purpose};
use crate::user::{self, User, UserInput, UserPatch};
use crate::{audit, client, session, totp};

/// Who asked for an operation, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    /// The bearer-authenticated admin API (and the CLI through it).
    Api,
    /// A global admin signed in to the console.
    Console { admin_id: &'a str },
}

impl Actor<'_> {
    /// `detail` with `via` and `by` added for a console admin.
    pub fn detail(self, mut detail: Value) -> Value {
        if let (Actor::Console { admin_id }, Some(obj)) = (self, detail.as_object_mut()) {
            obj.insert("via".into(), "console".into());
            obj.insert("by".into(), admin_id.into());
        }
        detail
    }
}

fn taken() -> AdminError {
    AdminError::Conflict("A user with this email or username already exists.".into())
}

/// Creates a user; with `password`, its argon2id hash goes to the credentials database first,
/// so a failure there leaves no user without the password the admin asked for.
pub async fn create<P: Ports>(
    ports: &P,
    input: UserInput,
    now: UnixTime,
    actor: Actor<'_>,
) -> Result<User, AdminError> {
    let id = client::random_uuid(ports)?;
    let (u, password) = input
        .validate(id, now)
        .map_err(|e| AdminError::InvalidRequest(e.0))?;
    if user::find_by_identifier(ports.sql(), &u.email)
        .await?
        .is_some()
        || user::find_by_identifier(ports.sql(), &u.username)
            .await?
            .is_some()
    {
        return Err(taken());
    }
    if let Some(p) = &password {
        let phc = user::hash_password(ports, p)?;
        user::set_password(ports.credentials(), &u.id, &phc, now).await?;
    }
    let refusal = match user::insert(ports.sql(), &u).await? {
        user::Inserted::Created => None,
        user::Inserted::Taken => Some(taken()),
        user::Inserted::IdIsAClient => Some(AdminError::Conflict(
            "The user id is the client_id of a client; a user's sub and a client's id must \
             differ."
                .into(),
        )),
    };
    if let Some(e) = refusal {
        if password.is_some() {
            user::delete_credentials(ports.credentials(), &u.id).await?;
        }
        return Err(e);
    }
    audit::record(
        ports.sql(),
        now,
        "user.created",
        &u.id,
        actor.detail(
            json!({ "username": u.username, "email": u.email, "is_admin": u.is_admin,
                             "password_set": password.is_some() }),
        ),
    )
    .await;
    Ok(u)
}

/// Merges `patch` over `existing` with the create rules ([`UserPatch::apply`]); the id
/// (`sub`) never changes.
pub async fn update<P: Ports>(
    ports: &P,
    existing: &User,
    patch: UserPatch,
    now: UnixTime,
    actor: Actor<'_>,
) -> Result<User, AdminError> {
    let u = patch
        .apply(existing, now)
        .map_err(|e| AdminError::InvalidRequest(e.0))?;
    let conflict =
        || AdminError::Conflict("Another user has this email or username already.".into());
    for other in [
        user::find_by_identifier(ports.sql(), &u.email).await?,
        user::find_by_identifier(ports.sql(), &u.username).await?,
    ]
    .into_iter()
    .flatten()
    {
        if other.id != u.id {
            return Err(conflict());
        }
    }
    if !user::update(ports.sql(), &u).await? {
        return Err(conflict());
    }
    audit::record(
        ports.sql(),
        now,
        "user.updated",
        &u.id,
        actor.detail(json!({ "changed": u.changed_fields(existing) })),
    )
    .await;
    Ok(u)
}

/// A recovery link issued for an admin, and whether it was mailed.
#[derive(Debug, Clone)]
pub struct Link {
    pub issued: Issued,
    pub sent: bool,
    /// Why mailing failed, when asked to mail it (safe to show to the admin).
    pub mail_error: Option<String>,
}

/// Issues a single-use recovery link (24 h for `welcome`, 1 h for `reset`; by default
/// `welcome` while the user has no password, `reset` after) and, with `send`, mails it. The
/// link is answered even when mailing fails, so the admin can hand it over another way.
pub async fn recovery_link<P: Ports>(
    ports: &P,
    settings: &Settings,
    u: &User,
    purpose: Option<Purpose>,
    send: bool,
    now: UnixTime,
    actor: Actor<'_>,
) -> Result<Link, AdminError> {
    if u.disabled {
        return Err(AdminError::Conflict(
            "The user is disabled: enable them first.".into(),
        ));
    }
    let purpose = match purpose {
        Some(p) => p,
        None => {
            user::ensure_credentials_schema(ports.credentials()).await?;
            if user::password_hash(ports.credentials(), &u.id)
                .await?
                .is_some()
            {
                Purpose::Reset
            } else {
                Purpose::Welcome
            }
        }
    };
    let detail = actor.detail(json!({ "by": "admin" }));
    let issued = recovery::issue_audited(ports, settings, u, purpose, now, detail).await?;
    let mut link = Link {
        issued,
        sent: false,
        mail_error: None,
    };
    if send {
        match recovery::send(ports, settings, u, &link.issued, now).await {
            Ok(()) => link.sent = true,
            Err(e) => link.mail_error = Some(e.message),
        }
    }
    Ok(link)
}

/// Disabling ends the user's sessions and revokes their grants in the same batch
/// ([`user::disable`]); enabling lets them sign in again (nothing is restored).
pub async fn set_disabled<P: Ports>(
    ports: &P,
    u: &User,
    disable: bool,
    now: UnixTime,
    actor: Actor<'_>,
) -> Result<(), AdminError> {
    let kind = if disable {
        user::disable(ports.sql(), &u.id, now).await?;
        "user.disabled"
    } else {
        user::enable(ports.sql(), &u.id, now).await?;
        "user.enabled"
    };
    audit::record(ports.sql(), now, kind, &u.id, actor.detail(json!({}))).await;
    Ok(())
}

/// Deletes the user with their sessions, consents, grants and roles ([`user::delete`]), then
/// their credentials.
pub async fn delete<P: Ports>(
    ports: &P,
    u: &User,
    now: UnixTime,
    actor: Actor<'_>,
) -> Result<(), AdminError> {
    if !user::delete(ports.sql(), &u.id, now).await? {
        return Err(AdminError::NotFound);
    }
    user::delete_credentials(ports.credentials(), &u.id).await?;
    audit::record(
        ports.sql(),
        now,
        "user.deleted",
        &u.id,
        actor.detail(json!({ "username": u.username, "email": u.email })),
    )
    .await;
    Ok(())
}

/// Ends every session of `u` ([`session::end_for_user`], as the settings page ends sessions,
/// one `session.ended` event each with `by_sid`, the session that asked). Returns how many
/// ended.
pub async fn end_sessions<P: Ports>(
    ports: &P,
    u: &User,
    by_sid: &str,
    now: UnixTime,
) -> Result<usize, AdminError> {
    let ended =
        session::end_for_user(ports.sql(), &u.id, session::Ending::All, by_sid, now).await?;
    Ok(ended.len())
}

/// Removes the user's second factor and recovery codes ([`totp::remove`], as the settings
/// page does).
pub async fn remove_totp<P: Ports>(
    ports: &P,
    u: &User,
    now: UnixTime,
    actor: Actor<'_>,
) -> Result<(), AdminError> {
    totp::remove(ports, &u.id, now).await?;
    audit::record(
        ports.sql(),
        now,
        "totp.removed",
        &u.id,
        actor.detail(json!({})),
    )
    .await;
    Ok(())
}

/// Whether an enabled global admin other than `user_id` exists: the console refuses to let the
/// last one demote, disable or delete themselves (nobody could sign in to administer then).
pub async fn another_enabled_admin(
    sql: &impl crate::ports::Sql,
    user_id: &str,
) -> Result<bool, crate::ports::PortError> {
    let rows = sql
        .query(crate::ports::Statement::new(
            "SELECT 1 FROM users WHERE is_admin = 1 AND disabled = 0 AND id <> ? LIMIT 1",
            vec![user_id.into()],
        ))
        .await?;
    Ok(!rows.is_empty())
}
