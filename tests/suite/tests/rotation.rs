//! Signing-key rotation, black-box: the next key is published before it signs, and tokens
//! signed before a rotation still verify after it.

use std::collections::HashSet;

use edgeid_suite::serde_json::json;
use edgeid_suite::{admin, basic, create_client, header, jwks, token, verify_access_token};

fn kids() -> HashSet<String> {
    jwks()
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect()
}

fn access_token(id: &str, secret: &str) -> String {
    let resp = token(Some(&basic(id, secret)), "grant_type=client_credentials");
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

#[test]
fn rotation_publishes_before_signing_and_keeps_old_tokens_valid() {
    let (id, secret) = create_client(json!({}));
    let before = access_token(&id, &secret);
    let old_kid = header(&before).kid.expect("kid");
    let published_before = kids();

    let resp = admin("POST", "/keys/rotate", Some(json!({"alg": "ES256"})));
    assert_eq!(resp.status, 200, "{}", resp.text());

    // A Workers isolate may keep signing with the key it read for a few seconds (its memo of
    // the KV cache, issue 12); on every host the retired key stays published meanwhile.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(7);
    let after = loop {
        let t = access_token(&id, &secret);
        let signed_by = header(&t).kid.expect("kid");
        if signed_by != old_kid || std::time::Instant::now() > deadline {
            break t;
        }
        verify_access_token(&t, &jwks(), &id);
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    let new_kid = header(&after).kid.expect("kid");
    assert_ne!(
        new_kid, old_kid,
        "a rotation changes the signing key within seconds"
    );
    assert!(
        published_before.contains(&new_kid),
        "the new signing key was published before it signed"
    );

    let set = jwks();
    assert!(
        set.find(&old_kid).is_some(),
        "the retired key stays published"
    );
    verify_access_token(&before, &set, &id);
    verify_access_token(&after, &set, &id);
}
