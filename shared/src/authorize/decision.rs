//! "May this session complete this authorization request?" — the one answer every page that
//! can end in a code or tokens acts on (DESIGN.md, "One decision per question"): the
//! authorization endpoint with a returning session and with `prompt=none`, the login form,
//! the TOTP step, and the consent page (GET and POST).
//!
//! The checks, in the order a user would meet them:
//! - a session, of a user who still exists and is enabled;
//! - `prompt=login` / `prompt=select_account` (OIDC Core §3.1.2.1): an authentication made
//!   for this very request (`fresh`), never a session that existed before it;
//! - `max_age` (OIDC Core §3.1.2.1): an authentication no older than that;
//! - `id_token_hint` (OIDC Core §3.1.2.1): the hinted `sub` is the session's user;
//! - the second factor: a user with TOTP needs a session whose `amr` has `otp` (RFC 8176);
//! - the role gate: users reach an application only with a role on it (DESIGN.md);
//! - consent (OIDC Core §3.1.2.4): skipped for first-party clients, else remembered per scope.
//!
//! The function is pure given what it loads; pages differ only in what they do with the answer.

use super::request::AuthorizeRequest;
use crate::client::Client;
use crate::error::OAuthError;
use crate::ports::{Ports, UnixTime};
use crate::session::Session;
use crate::{app, totp, user};

/// Why a session cannot complete the request and the user must authenticate (again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reauthenticate {
    NoSession,
    /// The user was deleted or disabled.
    UserUnavailable,
    /// `prompt=login` or `select_account`, and the session was not authenticated for this
    /// request.
    PromptLogin,
    /// The authentication is older than `max_age`.
    MaxAge,
    /// The `id_token_hint` names another user.
    OtherUser,
    /// The user has a second factor and the session did not use it.
    SecondFactor,
}

/// The answer, which every page acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Authenticate first (the login page; `login_required` under `prompt=none`).
    Authenticate(Reauthenticate),
    /// The user holds no role on the client's app: the `access_denied` page, no session.
    Denied { app: String, username: String },
    /// The user must consent (or consent again, under `prompt=consent`).
    Consent,
    /// Respond to the client.
    Proceed,
}

/// The session a decision is taken for.
#[derive(Debug, Clone, Copy)]
pub enum Who<'a> {
    /// The browser has no live session.
    Nobody,
    /// A session that existed before this request.
    Returning(&'a Session),
    /// A session authenticated for this very request: the login page's own sign-in (about to
    /// start), or the session the consent page was asked of (which the decision already let
    /// through once, `prompt=login` included).
    Fresh(&'a Session),
}

impl<'a> Who<'a> {
    /// A live session (or none) that existed before this request.
    pub fn returning(session: Option<&'a Session>) -> Who<'a> {
        session.map_or(Who::Nobody, Who::Returning)
    }

    pub fn session(self) -> Option<&'a Session> {
        match self {
            Who::Nobody => None,
            Who::Returning(s) | Who::Fresh(s) => Some(s),
        }
    }
}

/// Decides whether `who` may complete `areq` for `client` at `now`.
pub async fn decide<P: Ports>(
    ports: &P,
    now: UnixTime,
    client: &Client,
    areq: &AuthorizeRequest,
    who: Who<'_>,
) -> Result<Decision, OAuthError> {
    use Reauthenticate as R;
    let fresh = matches!(who, Who::Fresh(_));
    let Some(s) = who.session() else {
        return Ok(Decision::Authenticate(R::NoSession));
    };
    let Some(user) = user::load(ports.sql(), &s.user_id)
        .await?
        .filter(|u| !u.disabled)
    else {
        return Ok(Decision::Authenticate(R::UserUnavailable));
    };
    if (areq.prompt.login || areq.prompt.select_account) && !fresh {
        return Ok(Decision::Authenticate(R::PromptLogin));
    }
    if areq.max_age.is_some_and(|m| now - s.auth_time > m) {
        return Ok(Decision::Authenticate(R::MaxAge));
    }
    if areq.hint_sub.as_ref().is_some_and(|sub| *sub != s.user_id) {
        return Ok(Decision::Authenticate(R::OtherUser));
    }
    if !s.amr.iter().any(|m| m == totp::AMR_OTP) && totp::enrolled(ports.sql(), &user.id).await? {
        return Ok(Decision::Authenticate(R::SecondFactor));
    }
    if let app::Access::Denied { app } = app::access(ports.sql(), &user, &client.client_id).await? {
        return Ok(Decision::Denied {
            app: app.name,
            username: user.username,
        });
    }
    if !client.skip_consent {
        let granted =
            super::complete::remembered_consent(ports, &user.id, &client.client_id).await?;
        let granted: std::collections::HashSet<&str> = granted.iter().map(String::as_str).collect();
        let covered = areq.scope.iter().all(|s| granted.contains(s.as_str()));
        if areq.prompt.consent || !covered {
            return Ok(Decision::Consent);
        }
    }
    Ok(Decision::Proceed)
}
