//! The writes of one import batch (see the parent module for the order and what a failure
//! in between leaves) and the welcome links issued after them.

use super::{Item, Outcome, Plan, Welcome, json_list};
use crate::admin::AdminError;
use crate::config::{self, Settings};
use crate::ports::{PortError, Ports, Sql as _, Statement, UnixTime};
use crate::{recovery, totp};

/// `extra` joins the last batch of the main database (after the users, in the same atomic
/// batch): the console's import writes its roles there.
pub(super) async fn write<P: Ports>(
    ports: &P,
    plans: &[(usize, Plan)],
    extra: Vec<Statement>,
    now: UnixTime,
) -> Result<(), AdminError> {
    let plans: Vec<&Plan> = plans.iter().map(|(_, p)| p).collect();
    // Existing users whose password changes or who are disabled now: what the old password
    // opened ends (DESIGN.md, "credential changes end what they protect").
    let end: Vec<&str> = plans
        .iter()
        .filter(|p| {
            p.existing
                .as_ref()
                .is_some_and(|old| p.password.is_some() || (p.user.disabled && !old.disabled))
        })
        .map(|p| p.user.id.as_str())
        .collect();
    let gaining_totp: Vec<&str> = plans
        .iter()
        .filter(|p| p.totp.is_some())
        .map(|p| p.user.id.as_str())
        .collect();
    let end_statements = |end: &[&str]| -> Result<Vec<Statement>, PortError> {
        Ok(vec![
            Statement::new(
                "UPDATE sessions SET ended_at = ?1 WHERE ended_at IS NULL \
                 AND user_id IN (SELECT value FROM json_each(?2))",
                vec![now.into(), json_list(end)?],
            ),
            Statement::new(
                "UPDATE grants SET revoked_at = ?1 WHERE revoked_at IS NULL \
                 AND user_id IN (SELECT value FROM json_each(?2))",
                vec![now.into(), json_list(end)?],
            ),
        ])
    };
    // 1. Main database, before any credential.
    let mut first = Vec::new();
    if !gaining_totp.is_empty() {
        first.push(Statement::new(
            "INSERT INTO user_factors (user_id, totp, updated_at) \
             SELECT value, 1, ?1 FROM json_each(?2) WHERE true \
             ON CONFLICT (user_id) DO UPDATE SET totp = 1, updated_at = excluded.updated_at",
            vec![now.into(), json_list(&gaining_totp)?],
        ));
    }
    if !end.is_empty() {
        first.extend(end_statements(&end)?);
    }
    if !first.is_empty() {
        ports.sql().batch(first).await?;
    }
    // 2. Credentials database.
    let passwords: Vec<serde_json::Value> = plans
        .iter()
        .filter_map(|p| {
            p.password
                .as_ref()
                .map(|(phc, source)| serde_json::json!([p.user.id, phc, source]))
        })
        .collect();
    let sources: Vec<serde_json::Value> = plans
        .iter()
        .filter_map(|p| {
            p.password
                .as_ref()
                .map(|(_, s)| s)
                .or(p.password_source.as_ref())
                .map(|s| serde_json::json!([p.user.id, s]))
        })
        .collect();
    let kek = if gaining_totp.is_empty() {
        None
    } else {
        Some(config::kek(ports)?)
    };
    let mut secrets = Vec::new();
    for p in &plans {
        if let (Some(secret), Some(kek)) = (&p.totp, &kek) {
            let sealed = kek.seal(ports, &totp::seal_context(&p.user.id), secret)?;
            secrets.push(serde_json::json!([p.user.id, sealed]));
        }
    }
    let mut creds = Vec::new();
    if !passwords.is_empty() {
        creds.push(Statement::new(
            "INSERT INTO password_credentials (user_id, phc, updated_at) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?1 \
             FROM json_each(?2) WHERE true \
             ON CONFLICT (user_id) DO UPDATE SET phc = excluded.phc, \
             updated_at = excluded.updated_at",
            vec![now.into(), json_list(&passwords)?],
        ));
        // A recovery link mailed before the import must not undo it.
        creds.push(Statement::new(
            "UPDATE recovery_tokens SET used_at = ?1 WHERE used_at IS NULL AND user_id IN \
             (SELECT json_extract(value, '$[0]') FROM json_each(?2))",
            vec![now.into(), json_list(&passwords)?],
        ));
    }
    if !sources.is_empty() {
        creds.push(Statement::new(
            "INSERT INTO imported_passwords (user_id, source_sha256, imported_at) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?1 \
             FROM json_each(?2) WHERE true \
             ON CONFLICT (user_id) DO UPDATE SET source_sha256 = excluded.source_sha256, \
             imported_at = excluded.imported_at",
            vec![now.into(), json_list(&sources)?],
        ));
    }
    if !secrets.is_empty() {
        creds.push(Statement::new(
            "INSERT INTO totp_credentials (user_id, secret_sealed, created_at, last_step) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?1, 0 \
             FROM json_each(?2) WHERE true \
             ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, \
             created_at = excluded.created_at, last_step = 0",
            vec![now.into(), json_list(&secrets)?],
        ));
        // Recovery codes belonged to the secret they were issued with.
        creds.push(Statement::new(
            "DELETE FROM recovery_codes WHERE user_id IN \
             (SELECT json_extract(value, '$[0]') FROM json_each(?1))",
            vec![json_list(&secrets)?],
        ));
    }
    if !creds.is_empty() {
        ports.credentials().batch(creds).await?;
    }
    // 3. Main database: the users, then the audit trail.
    let users: Vec<serde_json::Value> = plans
        .iter()
        .filter(|p| p.existing.is_none() || !p.profile_changed.is_empty())
        .map(|p| {
            let u = &p.user;
            serde_json::json!([
                u.id,
                u.email,
                u.username,
                u.name,
                u.given_name,
                u.family_name,
                i64::from(u.email_verified),
                i64::from(u.is_admin),
                i64::from(u.disabled),
                u.created_at,
                u.updated_at
            ])
        })
        .collect();
    let mut main = Vec::new();
    if !users.is_empty() {
        main.push(Statement::new(
            "INSERT INTO users (id, email, username, name, given_name, family_name, \
             email_verified, is_admin, disabled, created_at, updated_at) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
             json_extract(value, '$[2]'), json_extract(value, '$[3]'), \
             json_extract(value, '$[4]'), json_extract(value, '$[5]'), \
             json_extract(value, '$[6]'), json_extract(value, '$[7]'), \
             json_extract(value, '$[8]'), json_extract(value, '$[9]'), \
             json_extract(value, '$[10]') FROM json_each(?1) WHERE true \
             ON CONFLICT (id) DO UPDATE SET email = excluded.email, \
             username = excluded.username, name = excluded.name, \
             given_name = excluded.given_name, family_name = excluded.family_name, \
             email_verified = excluded.email_verified, disabled = excluded.disabled, \
             updated_at = excluded.updated_at",
            vec![json_list(&users)?],
        ));
    }
    if !end.is_empty() {
        main.extend(end_statements(&end)?);
    }
    let events: Vec<serde_json::Value> = plans
        .iter()
        .filter_map(|p| {
            let (kind, detail) = match p.outcome() {
                Outcome::Created => (
                    "user.imported",
                    serde_json::json!({
                        "username": p.user.username, "email": p.user.email,
                        "password": p.password_kind, "totp": p.totp.is_some(),
                    }),
                ),
                Outcome::Updated => (
                    "user.updated",
                    serde_json::json!({
                        "by": "import", "changed": p.profile_changed,
                        "password": p.password.as_ref().map(|_| p.password_kind),
                        "totp": p.totp.is_some(),
                    }),
                ),
                _ => return None,
            };
            Some(serde_json::json!([kind, p.user.id, detail.to_string()]))
        })
        .collect();
    if !events.is_empty() {
        main.push(Statement::new(
            "INSERT INTO audit_events (at, kind, subject, detail) \
             SELECT ?1, json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
             json_extract(value, '$[2]') FROM json_each(?2)",
            vec![now.into(), json_list(&events)?],
        ));
    }
    main.extend(extra);
    if !main.is_empty() {
        ports.sql().batch(main).await?;
    }
    Ok(())
}

/// Welcome links for the users this batch created without a usable password (after the
/// batch is written; a link that fails is noted, the import stands).
pub(super) async fn welcome<P: Ports>(
    ports: &P,
    plans: &[(usize, Plan)],
    items: &mut [Item],
    how: Welcome,
    now: UnixTime,
) -> Result<(), AdminError> {
    let settings = Settings::load(ports)?;
    for (i, p) in plans {
        if p.existing.is_some() || !p.passwordless || p.user.disabled {
            continue;
        }
        let Some(item) = items.get_mut(*i) else {
            continue;
        };
        match recovery::issue(
            ports,
            &settings,
            &p.user,
            recovery::Purpose::Welcome,
            now,
            "import",
        )
        .await
        {
            Ok(issued) => {
                if how == Welcome::Send
                    && let Err(e) = recovery::send(ports, &settings, &p.user, &issued, now).await
                {
                    item.notes
                        .push(format!("welcome link not mailed: {}", e.message));
                }
                item.link = Some(issued.link);
            }
            Err(e) => item.notes.push(format!("no welcome link: {}", e.message)),
        }
    }
    Ok(())
}
