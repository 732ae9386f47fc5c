//! Fixtures shared by the targets: a registered client, a published key set, an RNG.
#![allow(dead_code)] // each target uses a different part

use edgeid::client::Client;
use edgeid::jose::Jwk;

/// A confidential client with two redirect URIs and a few scopes, as storage returns it.
pub fn client() -> Client {
    serde_json::from_value(serde_json::json!({
        "client_id": "rp", "client_name": "RP",
        "grant_types": ["authorization_code", "refresh_token", "client_credentials", "implicit"],
        "response_types": ["code", "id_token", "code id_token", "id_token token"],
        "redirect_uris": ["https://rp.example/cb", "com.example.app:/cb"],
        "post_logout_redirect_uris": [], "scope": "openid profile email offline_access",
        "audience": ["https://api.example"],
        "token_endpoint_auth_method": "client_secret_basic", "skip_consent": false,
        "id_token_signed_response_alg": "RS256", "owner": "", "metadata": {},
        "created_at": 0, "updated_at": 0
    }))
    .expect("the fixture is a valid client")
}

/// Published keys: one ES256 and one RS256 public key (the private halves were discarded:
/// a fuzzer cannot forge signatures, it exercises everything before and around them).
pub fn keys() -> Vec<Jwk> {
    serde_json::from_value(serde_json::json!([
        {"kty": "EC", "crv": "P-256", "x": "e1bs2biH4OuOfOr6jHnxPJf6s7lHGMFVeDZ4E-yAOTk",
         "y": "9Sp3MbGz668jrfsBS9Uplo6FNlNrCxMIv8K7KxIVRZk", "kid": "fuzz-es256", "use": "sig",
         "alg": "ES256"},
        {"kty": "RSA", "n": "9DoMpsKo2K_QN0Oi0CU_sS6Adr560bjURNiVJx_L8MpvWSQdOVnNMdCN06OzTC25751cNzfTG6qhaEfVV-qP7n59LEjkYs17JJJ-F1VEAmXWAlvJbWdQvBFk3asn8ZbrwsUvPQAwqWcJvhZsX8j1rULJSxiu6YiZTwhG_2fkUiYwPBRn10pZ1I8xYmK_YkSnPJerLKNaQxqtO6-5QqGPI64kIZ7twSKw1xw95Ns9zlQ6vzyTharUxSriwhZQhXrl-RzzMohU1i9xob8d23Gwgf4xRha7JKsurTOEYnZA9-h_0ERaxiWuznnHbfGFbAqhTeA75dU7g9AC-HnIj_r-Gw", "e": "AQAB", "kid": "fuzz-rs256", "use": "sig", "alg": "RS256"}
    ]))
    .expect("the fixture keys are valid JWKs")
}

/// A deterministic RNG (the targets must be reproducible from their input alone).
pub struct CountingRng(pub std::cell::Cell<u8>);

impl edgeid::ports::Rng for CountingRng {
    fn fill(&self, buf: &mut [u8]) -> Result<(), edgeid::ports::PortError> {
        for b in buf {
            let n = self.0.get().wrapping_add(1);
            self.0.set(n);
            *b = n;
        }
        Ok(())
    }
}

/// The input split at its first newline: (first line, rest).
pub fn split_first_line(s: &str) -> (&str, &str) {
    s.split_once('\n').unwrap_or((s, ""))
}
