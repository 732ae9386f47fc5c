//! Settings: enrolling and removing the TOTP second factor (RFC 6238).

#[allow(clippy::wildcard_imports)]
use super::*;

/// How long an enrolment page (its sealed, not yet confirmed secret) stays valid.
const ENROL_TTL: i64 = 10 * 60;
const ENROL_CONTEXT: &str = "edgeid/totp-enrol/v1";

// --- TOTP -----------------------------------------------------------------------------------

/// The session signed in within [`RECENT_LOGIN`]: what enrolling, replacing and removing the
/// second factor ask for (issue 9), besides what each form checks itself.
fn recent_enough(ctx: &Ctx<'_>) -> bool {
    ctx.now - ctx.s.auth_time <= RECENT_LOGIN
}

/// The secret being enrolled, sealed into the enrolment form: nothing is stored until the user
/// proves their app has it.
#[derive(Serialize, Deserialize)]
struct Enrolment {
    user: String,
    session: String,
    secret: String,
    exp: UnixTime,
}

pub(super) fn enrol_start<P: Ports>(ports: &P, ctx: &Ctx<'_>) -> Result<Response, OAuthError> {
    let secret = totp::new_secret(ports)?;
    let plain = serde_json::to_vec(&Enrolment {
        user: ctx.user.id.clone(),
        session: ctx.s.token_sha256.clone(),
        secret: b64url(&secret),
        exp: ctx.now + ENROL_TTL,
    })
    .map_err(OAuthError::server)?;
    let sealed = config::kek(ports)?.seal(ports, ENROL_CONTEXT, &plain)?;
    Ok(enrol_page(
        ctx,
        &secret,
        &sealed,
        &Errors::default(),
        StatusCode::OK,
    ))
}

fn enrol_page(
    ctx: &Ctx<'_>,
    secret: &[u8],
    sealed: &str,
    errors: &Errors,
    status: StatusCode,
) -> Response {
    let uri = totp::otpauth_uri(&ctx.settings.instance_name, &ctx.user.username, secret);
    let qr = totp::qr_svg(&uri).map_or(String::new(), |svg| {
        format!("<figure class=\"qr\">{svg}</figure>")
    });
    let b32 = totp::base32(secret);
    let grouped = b32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let body = format!(
        "<h1>Set up two-step sign-in</h1>\
         <ol><li>Scan this QR code with your authenticator app, or enter the key below.</li>\
         <li>Enter the 6-digit code the app shows.</li></ol>{qr}\
         <p>Key: <code class=\"secret\">{grouped}</code></p>\
         <form method=\"post\" action=\"/settings/totp\">{csrf}\
         <input type=\"hidden\" name=\"pending\" value=\"{sealed}\">{code}{current}\
         <button type=\"submit\">Turn on</button></form>\
         <p><a href=\"/settings\">Cancel</a></p>",
        grouped = escape(&grouped),
        csrf = hidden_csrf(ctx.csrf),
        sealed = escape(sealed),
        code = Field {
            id: "code",
            label: "Code from the app",
            kind: "text",
            value: "",
            autocomplete: "one-time-code",
            hint: None,
            required: true,
        }
        .render(errors),
        current = if recent_enough(ctx) {
            String::new()
        } else {
            Field {
                id: "current_password",
                label: "Your password",
                kind: "password",
                value: "",
                autocomplete: "current-password",
                hint: Some("You signed in more than 5 minutes ago: confirm it is you."),
                required: true,
            }
            .render(errors)
        },
    );
    html::response(
        status,
        html::page(
            &ctx.settings.instance_name,
            "Set up two-step sign-in",
            &body,
        ),
    )
}

pub(super) async fn enrol_confirm<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    req: &Request,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let expired = || OAuthError::invalid_request("This setup page has expired. Start again.");
    let sealed = form.get("pending").ok_or_else(expired)?;
    let plain = config::kek(ports)?
        .open(ENROL_CONTEXT, sealed)
        .map_err(|_| expired())?;
    let e: Enrolment = serde_json::from_slice(&plain).map_err(|_| expired())?;
    if e.exp <= ctx.now || e.user != ctx.user.id || e.session != ctx.s.token_sha256 {
        return Err(expired());
    }
    let secret = b64url_decode(&e.secret).map_err(|_| expired())?;
    // Issue 9: a second factor is enrolled only by a recent authentication (or the password
    // typed now), so a session left open somewhere cannot bind the account to an attacker's app.
    if !recent_enough(ctx) {
        let current = form.get("current_password").unwrap_or("");
        let refusal = if current.is_empty() {
            Some("Enter your password: you signed in more than 5 minutes ago.".to_owned())
        } else {
            password_ok(ports, ctx, req, current).await?.err()
        };
        if let Some(m) = refusal {
            let errors = Errors::one("current_password", m);
            return Ok(enrol_page(
                ctx,
                &secret,
                sealed,
                &errors,
                StatusCode::UNAUTHORIZED,
            ));
        }
    }
    let Some(step) = totp::matching_step(&secret, form.get("code").unwrap_or(""), ctx.now) else {
        let errors = Errors::one(
            "code",
            "That code is not correct. Check the app shows this account, and try the next code.",
        );
        return Ok(enrol_page(
            ctx,
            &secret,
            sealed,
            &errors,
            StatusCode::BAD_REQUEST,
        ));
    };
    let codes = totp::new_recovery_codes(ports)?;
    if !totp::enroll(ports, &ctx.user.id, &secret, step, &codes, ctx.now).await? {
        return Ok(redirect_done(ctx.settings, "already"));
    }
    // This session just proved the factor; the user's other sessions did not, and from now
    // on neither the authorization endpoint nor these pages accept them.
    session::add_method(ports.sql(), &ctx.s.token_sha256, totp::AMR_OTP).await?;
    audit::record(
        ports.sql(),
        ctx.now,
        "totp.enrolled",
        &ctx.user.id,
        serde_json::json!({ "sid": ctx.s.sid }),
    )
    .await;
    let items: String = codes
        .iter()
        .map(|c| format!("<li><code>{}</code></li>", escape(c)))
        .collect();
    let body = format!(
        "<h1>Two-step sign-in is on</h1>\
         <p>Save these recovery codes somewhere safe. Each works once, in place of a code from \
         your app, if you lose it. They are shown only now.</p>\
         <ul class=\"codes\">{items}</ul>\
         <p><a href=\"/settings\">Back to settings</a></p>"
    );
    Ok(html::response(
        StatusCode::OK,
        html::page(&ctx.settings.instance_name, "Recovery codes", &body),
    ))
}

/// Turning TOTP off needs a current code or the password.
pub(super) async fn totp_remove<P: Ports>(
    ports: &P,
    ctx: &Ctx<'_>,
    req: &Request,
    form: &web::Form,
) -> Result<Response, OAuthError> {
    let Some(cred) = totp::load(ports, &ctx.user.id).await? else {
        return Ok(redirect_done(ctx.settings, "totp-removed"));
    };
    let input = form.get("totp_confirm").unwrap_or("");
    // Which one was typed is told by its shape alone: nothing is compared before the
    // throttle below.
    let digits: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    let is_code =
        digits.len() == totp::DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit());
    let ok = if is_code {
        // The same per-user second-factor counter as the sign-in step (issue 9).
        if let throttle::Verdict::Wait(seconds) =
            throttle::second_factor_attempt(ports, &ctx.user.id, ctx.now).await?
        {
            Err(super::super::throttled_message(seconds))
        } else if totp::verify_code(ports, &ctx.user.id, &cred, input, ctx.now).await? {
            throttle::second_factor_verified(ports, &ctx.user.id).await;
            Ok(())
        } else {
            Err("That code is not correct, or was already used.".to_owned())
        }
    } else if !(recent_enough(ctx) && ctx.s.amr.iter().any(|m| m == totp::AMR_OTP)) {
        // Issue 9: the password alone turns the factor off only in a recent session that
        // itself used the factor; any other session must show a code.
        Err("Enter a code from your app to turn two-step sign-in off.".to_owned())
    } else {
        password_ok(ports, ctx, req, input).await?
    };
    if let Err(m) = ok {
        return overview(
            ports,
            ctx,
            None,
            &Errors::one("totp_confirm", m),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    totp::remove(ports, &ctx.user.id, ctx.now).await?;
    audit::record(
        ports.sql(),
        ctx.now,
        "totp.removed",
        &ctx.user.id,
        serde_json::json!({ "sid": ctx.s.sid, "with": if is_code { "otp" } else { "pwd" } }),
    )
    .await;
    Ok(redirect_done(ctx.settings, "totp-removed"))
}
