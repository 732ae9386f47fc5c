//! Signing keys: provisioning, rotation, the published set (JWKS) and the current signer.
//!
//! Per algorithm one `current` key signs and one `next` key is already published, so a
//! relying party that refreshed its JWKS at any time since the previous rotation knows the key
//! before it signs anything (DESIGN.md, "Tokens and keys"). A retired key stays published
//! until every token it signed has expired.

use serde::Serialize;

use crate::OAuthError;
use crate::cache;
use crate::config::{Settings, kek};
use crate::jose::{Alg, Jwk, PrivateKey};
use crate::ports::{PortError, Ports, Row, Sql, Statement, UnixTime};

/// KV key of the cached public JWKS; deleted on rotation.
pub const JWKS_CACHE_KEY: &str = "jwks:v1";
/// How long an edge may serve a cached JWKS. Rotation deletes the entry; eventual-consistent
/// KV may serve the old set this long, which is safe because `next` keys are published a
/// whole rotation ahead.
pub const JWKS_CACHE_TTL: i64 = 60;

#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: Alg,
    pub state: String,
    pub created_at: UnixTime,
    pub activated_at: Option<UnixTime>,
    pub retired_at: Option<UnixTime>,
    pub expires_at: Option<UnixTime>,
}

fn info(row: &Row) -> Result<KeyInfo, PortError> {
    Ok(KeyInfo {
        kid: row.text(0)?.to_owned(),
        alg: Alg::parse(row.text(1)?).ok_or_else(|| PortError::other("signing_keys: bad alg"))?,
        state: row.text(2)?.to_owned(),
        created_at: row.int(3)?,
        activated_at: row.opt_int(4)?,
        retired_at: row.opt_int(5)?,
        expires_at: row.opt_int(6)?,
    })
}

pub async fn list(sql: &impl Sql) -> Result<Vec<KeyInfo>, PortError> {
    const Q: &str = "SELECT kid, alg, state, created_at, activated_at, retired_at, expires_at \
        FROM signing_keys ORDER BY alg, created_at, kid";
    sql.query(Statement::new(Q, vec![]))
        .await?
        .iter()
        .map(info)
        .collect()
}

/// The public keys to publish at `now`: next, current, and retired keys whose tokens may still
/// be live. Public members only (RFC 7517 §4; no `d`, `p`, `q`, ...).
pub async fn published(sql: &impl Sql, now: UnixTime) -> Result<Vec<Jwk>, PortError> {
    const Q: &str = "SELECT public_jwk FROM signing_keys \
        WHERE state != 'retired' OR expires_at > ? ORDER BY alg DESC, created_at DESC, kid";
    let rows = sql.query(Statement::new(Q, vec![now.into()])).await?;
    rows.iter()
        .map(|r| {
            serde_json::from_str(r.text(0)?)
                .map_err(|e| PortError::other(format!("public_jwk: {e}")))
        })
        .collect()
}

/// The public JWKS document, from the KV cache when fresh.
pub async fn jwks_json<P: Ports>(ports: &P, now: UnixTime) -> Result<Vec<u8>, OAuthError> {
    if let Some(cached) = cache::get(ports.kv(), JWKS_CACHE_KEY, now).await {
        return Ok(cached);
    }
    let keys = published(ports.sql(), now).await?;
    // A typed document rather than `json!`: `serde_json::Value` would link float formatting
    // into every component that serves the JWKS.
    #[derive(serde::Serialize)]
    struct JwkSet<'a> {
        keys: &'a [Jwk],
    }
    let body = serde_json::to_vec(&JwkSet { keys: &keys }).map_err(OAuthError::server)?;
    cache::put(ports.kv(), JWKS_CACHE_KEY, now, JWKS_CACHE_TTL, &body).await;
    Ok(body)
}

/// KV key prefix of the cached current keys.
const CURRENT_KEY_CACHE_PREFIX: &str = "signing-key:current:";

/// The KV caches a per-instance memo (`platform::memo`) may keep for a few seconds: both are
/// stale-tolerant by construction (a retired key stays published and verifiable for the
/// longest token lifetime plus [`CURRENT_KEY_CACHE_TTL`]; a `next` key is published a rotation
/// ahead). Client records and lock markers are not: they must see a deletion or a lock at once.
pub const STALE_TOLERANT_CACHES: [&str; 2] = [CURRENT_KEY_CACHE_PREFIX, JWKS_CACHE_KEY];

/// KV key of the cached current key of `alg`: `kid`, a newline, the sealed private key.
fn current_cache_key(alg: Alg) -> String {
    format!("{CURRENT_KEY_CACHE_PREFIX}v1:{}", alg.as_str())
}

/// How long a cached current key may keep signing after a rotation (issue 12, item 3: no SQL
/// on the token hot path while the cache is warm). Rotation deletes the entry, but Workers KV
/// is eventually consistent, so retirement keeps a key published this much longer than its
/// tokens live (see [`rotate`]). The entry holds the key sealed under the key-encryption key,
/// exactly as the `signing_keys` row does, so KV learns nothing SQL did not already hold.
pub const CURRENT_KEY_CACHE_TTL: i64 = 60;

/// The key that signs for `alg` now: from the KV cache when fresh, else from SQL (and cached).
pub async fn current<P: Ports>(
    ports: &P,
    now: UnixTime,
    alg: Alg,
) -> Result<PrivateKey, OAuthError> {
    let cache_key = current_cache_key(alg);
    if let Some(cached) = cache::get(ports.kv(), &cache_key, now).await
        && let Some((kid, sealed)) = std::str::from_utf8(&cached)
            .ok()
            .and_then(|v| v.split_once('\n'))
        // A damaged entry is not fatal: SQL is the source of truth. The seal binds the kid
        // (associated data), so an entry cannot pair one key's kid with another's material.
        && let Ok(private) = kek(ports)?.open(kid, sealed)
    {
        return Ok(PrivateKey::from_private_bytes(kid, alg, private));
    }
    const Q: &str =
        "SELECT kid, private_sealed FROM signing_keys WHERE alg = ? AND state = 'current'";
    let rows = ports
        .sql()
        .query(Statement::new(Q, vec![alg.as_str().into()]))
        .await?;
    let row = rows.first().ok_or_else(|| {
        OAuthError::server(format!(
            "no current {alg} signing key: provision keys with `edgeid keys rotate` or POST /admin/keys/rotate"
        ))
    })?;
    let (kid, sealed) = (row.text(0)?, row.text(1)?);
    let private = kek(ports)?.open(kid, sealed).map_err(OAuthError::server)?;
    let entry = format!("{kid}\n{sealed}");
    cache::put(
        ports.kv(),
        &cache_key,
        now,
        CURRENT_KEY_CACHE_TTL,
        entry.as_bytes(),
    )
    .await;
    Ok(PrivateKey::from_private_bytes(kid, alg, private))
}

/// Rotates the keys of `alg`: `next` becomes `current`, `current` is retired (published until
/// `now + longest token lifetime`), a fresh `next` is generated, expired keys are deleted —
/// one atomic batch. On an empty store this provisions `current` and `next`.
pub async fn rotate<P: Ports>(
    ports: &P,
    settings: &Settings,
    now: UnixTime,
    alg: Alg,
) -> Result<(), OAuthError> {
    const STATES: &str = "SELECT kid, state FROM signing_keys WHERE alg = ? AND state != 'retired'";
    let rows = ports
        .sql()
        .query(Statement::new(STATES, vec![alg.as_str().into()]))
        .await?;
    let state_kid = |s: &str| -> Result<Option<String>, PortError> {
        for r in &rows {
            if r.text(1)? == s {
                return Ok(Some(r.text(0)?.to_owned()));
            }
        }
        Ok(None)
    };
    let (current, next) = (state_kid("current")?, state_kid("next")?);
    let kek = kek(ports)?;
    let fresh = |state: &'static str| -> Result<Statement, OAuthError> {
        let (key, jwk) = PrivateKey::generate(alg, ports)?;
        let sealed = kek.seal(ports, &key.kid, key.private_bytes())?;
        let jwk = serde_json::to_string(&jwk).map_err(OAuthError::server)?;
        let activated = (state == "current").then_some(now);
        Ok(Statement::new(
            "INSERT INTO signing_keys (kid, alg, state, public_jwk, private_sealed, created_at, activated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![
                key.kid.clone().into(),
                alg.as_str().into(),
                state.into(),
                jwk.into(),
                sealed.into(),
                now.into(),
                activated.into(),
            ],
        ))
    };
    let mut batch = Vec::new();
    match (current, next) {
        (None, None) => {
            batch.push(fresh("current")?);
            batch.push(fresh("next")?);
        }
        (None, Some(next)) => {
            batch.extend(upgrade_stored_form(ports, &kek, alg, &next).await?);
            batch.push(activate(&next, now));
            batch.push(fresh("next")?);
        }
        // A current key without a successor (should not happen): publish one first, so the
        // next rotation has a key relying parties already know.
        (Some(_), None) => batch.push(fresh("next")?),
        (Some(current), Some(next)) => {
            batch.push(Statement::new(
                "UPDATE signing_keys SET state = 'retired', retired_at = ?, expires_at = ? \
                 WHERE kid = ? AND state = 'current'",
                // A cached copy of the retired key may sign for up to
                // CURRENT_KEY_CACHE_TTL more seconds, and its tokens must still verify.
                vec![
                    now.into(),
                    (now + settings.longest_token_ttl() + CURRENT_KEY_CACHE_TTL).into(),
                    current.into(),
                ],
            ));
            batch.extend(upgrade_stored_form(ports, &kek, alg, &next).await?);
            batch.push(activate(&next, now));
            batch.push(fresh("next")?);
        }
    }
    batch.push(Statement::new(
        "DELETE FROM signing_keys WHERE state = 'retired' AND expires_at <= ?",
        vec![now.into()],
    ));
    match ports.sql().batch(batch).await {
        Ok(()) => {}
        // The unique indexes admit one `current` and one `next` per algorithm, so a conflict
        // means a concurrent rotation (or provisioning) of `alg` committed after our read. It
        // did what this call was asked to do — the keys we saw are no longer the ones in
        // place — so this call succeeds instead of rotating twice (issue 9: concurrent
        // rotations never answer 5xx).
        Err(e) if e.kind == crate::ports::PortErrorKind::Conflict => {
            let now_rows = ports
                .sql()
                .query(Statement::new(STATES, vec![alg.as_str().into()]))
                .await?;
            if key_states(&rows)? == key_states(&now_rows)? {
                return Err(OAuthError::new(
                    crate::ErrorCode::TemporarilyUnavailable,
                    "A concurrent rotation won; retry.",
                )
                .with_internal(e));
            }
        }
        Err(e) => return Err(OAuthError::server(e)),
    }
    cache::invalidate(ports.kv(), JWKS_CACHE_KEY).await;
    cache::invalidate(ports.kv(), &current_cache_key(alg)).await;
    Ok(())
}

/// Re-seals the `next` key that is about to become current in today's stored form when it is
/// in an older one (issue 12: a P-256 key stored as its raw scalar before PKCS#8), so signing
/// with it never derives its public key. Keys in the old form still sign, only slower; on an
/// existing deployment one rotation after the upgrade brings the signing key to the new form.
async fn upgrade_stored_form<P: Ports>(
    ports: &P,
    kek: &crate::crypto::Kek,
    alg: Alg,
    kid: &str,
) -> Result<Option<Statement>, OAuthError> {
    if alg != Alg::ES256 {
        return Ok(None);
    }
    let rows = ports
        .sql()
        .query(Statement::new(
            "SELECT private_sealed FROM signing_keys WHERE kid = ?",
            vec![kid.into()],
        ))
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let private = kek.open(kid, row.text(0)?).map_err(OAuthError::server)?;
    let stored = PrivateKey::from_private_bytes(kid, alg, private);
    let Some(upgraded) = stored.upgraded()? else {
        return Ok(None);
    };
    let sealed = kek.seal(ports, kid, upgraded.private_bytes())?;
    Ok(Some(Statement::new(
        "UPDATE signing_keys SET private_sealed = ? WHERE kid = ? AND state = 'next'",
        vec![sealed.into(), kid.into()],
    )))
}

/// The (kid, state) pairs of a [`rotate`] read, in a stable order.
fn key_states(rows: &[crate::ports::Row]) -> Result<Vec<(String, String)>, PortError> {
    let mut states = rows
        .iter()
        .map(|r| Ok((r.text(0)?.to_owned(), r.text(1)?.to_owned())))
        .collect::<Result<Vec<_>, PortError>>()?;
    states.sort();
    Ok(states)
}

fn activate(kid: &str, now: UnixTime) -> Statement {
    Statement::new(
        "UPDATE signing_keys SET state = 'current', activated_at = ? WHERE kid = ? AND state = 'next'",
        vec![now.into(), kid.into()],
    )
}

#[cfg(all(test, feature = "native"))]
#[allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::platform::native::NativeKv;
    use crate::ports::{Clock, Config, PortError, Rng, Row};
    use crate::testing::MemoryHost;

    /// A host on which another rotation of the same algorithm commits between a rotation's
    /// read and its batch: what concurrent `POST /admin/keys/rotate` calls do.
    struct Racing<'h> {
        host: &'h MemoryHost,
        sql: RacingSql<'h>,
    }

    struct RacingSql<'h> {
        host: &'h MemoryHost,
        raced: Cell<bool>,
    }

    impl Sql for RacingSql<'_> {
        async fn query(&self, stmt: Statement) -> Result<Vec<Row>, PortError> {
            self.host.sql.query(stmt).await
        }

        async fn batch(&self, stmts: Vec<Statement>) -> Result<(), PortError> {
            if !self.raced.replace(true) {
                let settings =
                    Settings::load(self.host).map_err(|e| PortError::other(e.description))?;
                rotate(self.host, &settings, self.host.now(), Alg::ES256)
                    .await
                    .map_err(|e| PortError::other(e.description))?;
            }
            self.host.sql.batch(stmts).await
        }
    }

    impl Clock for Racing<'_> {
        fn now(&self) -> UnixTime {
            self.host.now()
        }
    }

    impl Rng for Racing<'_> {
        fn fill(&self, buf: &mut [u8]) -> Result<(), PortError> {
            self.host.fill(buf)
        }
    }

    impl Config for Racing<'_> {
        fn var(&self, name: &str) -> Option<String> {
            self.host.var(name)
        }
    }

    impl<'h> Ports for Racing<'h> {
        type Sql = RacingSql<'h>;
        type Kv = NativeKv;

        fn sql(&self) -> &RacingSql<'h> {
            &self.sql
        }

        fn credentials(&self) -> &RacingSql<'h> {
            &self.sql
        }

        fn kv(&self) -> &NativeKv {
            &self.host.kv
        }
    }

    fn states(host: &MemoryHost) -> Vec<(String, String)> {
        let rows = futures_executor::block_on(host.sql.query(Statement::new(
            "SELECT kid, state FROM signing_keys WHERE alg = 'ES256' AND state != 'retired'",
            vec![],
        )))
        .unwrap();
        key_states(&rows).unwrap()
    }

    #[test]
    fn issue9_a_rotation_that_loses_the_race_to_another_succeeds_without_rotating_twice() {
        let host = futures_executor::block_on(MemoryHost::new());
        let before = states(&host);
        let racing = Racing {
            host: &host,
            sql: RacingSql {
                host: &host,
                raced: Cell::new(false),
            },
        };
        let settings = Settings::load(&host).unwrap();
        futures_executor::block_on(rotate(&racing, &settings, host.now(), Alg::ES256))
            .expect("the concurrent rotation did the job: no temporarily_unavailable");
        let after = states(&host);
        assert_eq!(after.len(), 2, "one current, one next: {after:?}");
        assert_ne!(after, before, "the other rotation took place");
        let retired = futures_executor::block_on(host.sql.query(Statement::new(
            "SELECT COUNT(*) FROM signing_keys WHERE alg = 'ES256' AND state = 'retired'",
            vec![],
        )))
        .unwrap()[0]
            .int(0)
            .unwrap();
        assert_eq!(retired, 1, "one rotation, not two");
    }

    #[test]
    fn issue12_rotation_re_stores_a_raw_scalar_p256_key_as_it_becomes_current() {
        let host = futures_executor::block_on(MemoryHost::new());
        let next = states(&host)
            .into_iter()
            .find(|(_, state)| state == "next")
            .unwrap()
            .0;
        // Store `next` as edgeid stored P-256 keys before issue 12: the raw scalar.
        let kek = kek(&host).unwrap();
        let rows = futures_executor::block_on(host.sql.query(Statement::new(
            "SELECT private_sealed FROM signing_keys WHERE kid = ?",
            vec![next.clone().into()],
        )))
        .unwrap();
        let pkcs8 = kek.open(&next, rows[0].text(0).unwrap()).unwrap();
        let key = PrivateKey::from_private_bytes(&next, Alg::ES256, pkcs8.clone());
        let crate::jose::KeyMaterial::Es256(k) = key.parse().unwrap() else {
            panic!("ES256")
        };
        let legacy = kek.seal(&host, &next, &k.to_bytes()).unwrap();
        futures_executor::block_on(host.sql.batch(vec![Statement::new(
            "UPDATE signing_keys SET private_sealed = ? WHERE kid = ?",
            vec![legacy.into(), next.clone().into()],
        )]))
        .unwrap();

        let settings = Settings::load(&host).unwrap();
        futures_executor::block_on(rotate(&host, &settings, host.now(), Alg::ES256)).unwrap();
        let current = futures_executor::block_on(current(&host, host.now(), Alg::ES256)).unwrap();
        assert_eq!(current.kid, next);
        assert!(!current.is_raw_scalar(), "re-stored as PKCS#8");
        assert_eq!(current.private_bytes(), pkcs8.as_slice());
        let published = futures_executor::block_on(published(&host.sql, host.now())).unwrap();
        let token = futures_executor::block_on(crate::jose::sign_jwt(
            &host,
            &current,
            "JWT",
            &serde_json::json!({ "sub": "s" }),
        ))
        .unwrap();
        assert_eq!(crate::jose::verify(&token, &published).unwrap().kid, next);
        let jwk = published.iter().find(|j| j.kid == next).unwrap();
        assert_eq!(&current.public_jwk().unwrap(), jwk);
    }
}
