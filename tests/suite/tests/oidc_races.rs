//! Single use under concurrency (DESIGN.md "State"): 50 simultaneous redemptions of one code
//! or one refresh token, exactly one wins.

use std::sync::{Arc, Barrier};
use std::thread;

use edgeid_suite::serde_json::json;
use edgeid_suite::{
    Browser, OidcClient, Pkce, Resp, code_flow, create_oidc_client, create_user, login_flow,
    oauth_error, userinfo_get,
};

const N: usize = 50;

/// Runs `f` on N threads released together; returns the responses.
fn race(f: impl Fn() -> Resp + Send + Sync + 'static) -> Vec<Resp> {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(N));
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let (f, barrier) = (Arc::clone(&f), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                f()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("a racing thread did not panic"))
        .collect()
}

/// Exactly one 200; every other answer is 400 invalid_grant (no 5xx from lock contention).
fn exactly_one_winner(results: Vec<Resp>) -> Resp {
    let mut winners = Vec::new();
    for r in results {
        if r.status == 200 {
            winners.push(r);
        } else {
            assert_eq!(r.status, 400, "a loser answered {}: {}", r.status, r.text());
            assert_eq!(oauth_error(&r), "invalid_grant");
        }
    }
    assert_eq!(winners.len(), 1, "exactly one of {N} redemptions wins");
    winners.pop().expect("one winner")
}

fn client() -> OidcClient {
    create_oidc_client(json!({}))
}

#[test]
fn fifty_concurrent_code_redemptions_have_exactly_one_winner() {
    let client = client();
    let user = create_user(json!({}));
    let browser = Browser::new();
    let pkce = Pkce::s256();
    let req = client
        .auth_request()
        .set("scope", "openid offline_access")
        .pkce(&pkce);
    let code = login_flow(&browser, &req, &user).callback.code(&req);
    let c = client.clone();
    let winner = exactly_one_winner(race(move || c.exchange(&code, Some(&pkce.verifier))));
    // The losers were code reuse: what the winner got is revoked too (RFC 6749 §4.1.2).
    let at = winner.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    assert_eq!(
        userinfo_get(&at).status,
        401,
        "reuse revoked the winner's tokens"
    );
}

#[test]
fn fifty_concurrent_refreshes_have_exactly_one_winner_and_revoke_the_family() {
    let client = client();
    let user = create_user(json!({}));
    let browser = Browser::new();
    let cf = code_flow(&browser, &client, &user, "openid offline_access");
    let rt = cf.refresh_token().to_owned();
    let c = client.clone();
    let winner = exactly_one_winner(race(move || c.refresh(&rt)));
    let new_rt = winner.json()["refresh_token"]
        .as_str()
        .expect("the winner got a rotated refresh token")
        .to_owned();
    let after = client.refresh(&new_rt);
    assert_eq!(after.status, 400, "the family is revoked: {}", after.text());
    assert_eq!(oauth_error(&after), "invalid_grant");
}
