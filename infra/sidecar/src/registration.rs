//! From an `OAuth2Client` and its Secret to the registration the provider should hold. Every
//! rule about what a registration may contain is the core's (`edgeid::client`): the sidecar
//! runs the same validation the admin API runs, so a spec the provider would refuse is
//! reported on the resource before any request is sent.

use k8s_openapi::api::core::v1::Secret;
use sha2::{Digest, Sha256};

use edgeid::client::{ClientInput, MAX_SECRET_LEN, MIN_SECRET_LEN, validate_client_id};
use edgeid::ports::{PortError, Rng};

use crate::admin::Registration;
use crate::crd::OAuth2Client;

/// Which Secret keys hold the credentials. hydra-maester wrote `CLIENT_ID`/`CLIENT_SECRET`;
/// its older releases wrote `client_id`/`client_secret`. Both are read unless the operator
/// names the keys (`CLIENT_ID_KEY`, `CLIENT_SECRET_KEY`, hydra-maester's variables).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretKeys {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

impl SecretKeys {
    const ID: [&str; 2] = ["CLIENT_ID", "client_id"];
    const SECRET: [&str; 2] = ["CLIENT_SECRET", "client_secret"];

    /// The key a created Secret stores the id under.
    pub fn id_key(&self) -> &str {
        self.client_id.as_deref().unwrap_or(Self::ID[0])
    }

    /// The key a created Secret stores the secret under.
    pub fn secret_key(&self) -> &str {
        self.client_secret.as_deref().unwrap_or(Self::SECRET[0])
    }

    fn lookup<'a>(
        secret: &'a Secret,
        configured: Option<&str>,
        defaults: [&str; 2],
    ) -> Option<&'a [u8]> {
        let data = secret.data.as_ref()?;
        match configured {
            Some(key) => data.get(key).map(|v| v.0.as_slice()),
            None => defaults
                .iter()
                .find_map(|k| data.get(*k).map(|v| v.0.as_slice())),
        }
    }
}

/// Credentials read from a Secret, checked with the core's rules.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub client_id: String,
    /// `None` for a public client (`tokenEndpointAuthMethod: none`).
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "..."))
            .finish()
    }
}

/// Reads the credentials from `secret`. A public client needs no secret (any stored one is
/// ignored, as the provider refuses a secret for auth method `none`).
pub fn credentials(
    secret: &Secret,
    keys: &SecretKeys,
    public: bool,
) -> Result<Credentials, String> {
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    let text = |bytes: &[u8], what: &str| {
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("Secret {name}: {what} is not UTF-8"))
    };
    let id =
        SecretKeys::lookup(secret, keys.client_id.as_deref(), SecretKeys::ID).ok_or_else(|| {
            format!(
                "Secret {name} has no {} key",
                keys.client_id.as_deref().unwrap_or("CLIENT_ID")
            )
        })?;
    let client_id = validate_client_id(&text(id, "the client id")?)
        .map_err(|e| format!("Secret {name}: {}", e.0))?;
    if public {
        return Ok(Credentials {
            client_id,
            client_secret: None,
        });
    }
    let raw = SecretKeys::lookup(secret, keys.client_secret.as_deref(), SecretKeys::SECRET)
        .ok_or_else(|| {
            format!(
                "Secret {name} has no {} key (only tokenEndpointAuthMethod none needs none)",
                keys.client_secret.as_deref().unwrap_or("CLIENT_SECRET")
            )
        })?;
    let client_secret = text(raw, "the client secret")?;
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&client_secret.len()) {
        return Err(format!(
            "Secret {name}: the client secret must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} characters"
        ));
    }
    Ok(Credentials {
        client_id,
        client_secret: Some(client_secret),
    })
}

/// The registration `client` asks for, with `creds` when its Secret exists (without them the
/// provider generates both).
pub fn registration(client: &OAuth2Client, creds: Option<&Credentials>) -> Registration {
    let spec = &client.spec;
    Registration {
        client_id: creds.map(|c| c.client_id.clone()),
        client_secret: creds.and_then(|c| c.client_secret.clone()),
        client_name: spec.client_name.clone(),
        grant_types: spec.grant_types.clone(),
        response_types: (!spec.response_types.is_empty()).then(|| spec.response_types.clone()),
        redirect_uris: spec.redirect_uris.clone(),
        post_logout_redirect_uris: spec.post_logout_redirect_uris.clone(),
        scope: client.scope(),
        audience: spec.audience.clone(),
        token_endpoint_auth_method: (!spec.token_endpoint_auth_method.is_empty())
            .then(|| spec.token_endpoint_auth_method.clone()),
        skip_consent: spec.skip_consent,
        owner: client.owner(),
        metadata: match &spec.metadata {
            None | Some(serde_json::Value::Null) => serde_json::json!({}),
            Some(m) => m.clone(),
        },
    }
}

/// Whether `client` is a public client (no secret).
pub fn is_public(client: &OAuth2Client) -> bool {
    client.spec.token_endpoint_auth_method == "none"
}

/// Validates `reg` with the admin API's own rules and returns the record the provider would
/// store (normalized: sorted grant types, canonical response types, deduplicated scope).
pub fn validate(reg: &Registration) -> Result<edgeid::client::Client, String> {
    let value = serde_json::to_value(reg).map_err(|e| e.to_string())?;
    let input: ClientInput = serde_json::from_value(value).map_err(|e| e.to_string())?;
    input
        .validate(&Discarded, 0, None)
        .map(|(client, _)| client)
        .map_err(|e| e.0)
}

/// Whether the provider's record already says what `wanted` says (times and the secret,
/// which the provider never shows, aside).
pub fn same_registration(stored: &edgeid::client::Client, wanted: &edgeid::client::Client) -> bool {
    let strip = |c: &edgeid::client::Client| edgeid::client::Client {
        created_at: 0,
        updated_at: 0,
        client_secret_sha256: None,
        ..c.clone()
    };
    strip(stored) == strip(wanted)
}

/// A digest of everything the sidecar last wrote for a resource, secret included, so an
/// unchanged resource with an unchanged Secret causes no write.
pub fn fingerprint(reg: &Registration) -> String {
    let bytes = serde_json::to_vec(reg).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

/// Randomness for validation only: the id and secret it would generate are thrown away (the
/// provider generates the real ones).
struct Discarded;

impl Rng for Discarded {
    fn fill(&self, buf: &mut [u8]) -> Result<(), PortError> {
        buf.fill(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;
    use crate::crd::OAuth2ClientSpec;

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("creds".into()),
                ..Default::default()
            },
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        }
    }

    fn client(spec: OAuth2ClientSpec) -> OAuth2Client {
        let mut c = OAuth2Client::new("app", spec);
        c.metadata.namespace = Some("apps".into());
        c
    }

    #[test]
    fn reads_upper_and_lower_case_keys() {
        let keys = SecretKeys::default();
        for s in [
            secret(&[("CLIENT_ID", "app"), ("CLIENT_SECRET", "s3cret-value")]),
            secret(&[("client_id", "app"), ("client_secret", "s3cret-value")]),
        ] {
            let c = credentials(&s, &keys, false).unwrap();
            assert_eq!(c.client_id, "app");
            assert_eq!(c.client_secret.as_deref(), Some("s3cret-value"));
        }
    }

    #[test]
    fn configured_keys_are_the_only_ones_read() {
        let keys = SecretKeys {
            client_id: Some("id".into()),
            client_secret: Some("pw".into()),
        };
        let s = secret(&[
            ("id", "app"),
            ("pw", "s3cret-value"),
            ("CLIENT_ID", "other"),
        ]);
        assert_eq!(credentials(&s, &keys, false).unwrap().client_id, "app");
        let s = secret(&[("CLIENT_ID", "app"), ("CLIENT_SECRET", "s3cret-value")]);
        assert!(credentials(&s, &keys, false).is_err());
        assert_eq!(keys.id_key(), "id");
        assert_eq!(SecretKeys::default().secret_key(), "CLIENT_SECRET");
    }

    #[test]
    fn public_clients_need_no_secret_and_others_need_a_valid_one() {
        let keys = SecretKeys::default();
        let c = credentials(&secret(&[("CLIENT_ID", "spa")]), &keys, true).unwrap();
        assert_eq!(c.client_secret, None);
        assert!(credentials(&secret(&[("CLIENT_ID", "spa")]), &keys, false).is_err());
        let short = secret(&[("CLIENT_ID", "app"), ("CLIENT_SECRET", "abc")]);
        assert!(
            credentials(&short, &keys, false)
                .unwrap_err()
                .contains("characters")
        );
        let bad_id = secret(&[("CLIENT_ID", "bad id"), ("CLIENT_SECRET", "s3cret-value")]);
        assert!(credentials(&bad_id, &keys, false).is_err());
    }

    #[test]
    fn validation_is_the_cores_and_normalizes() {
        let c = client(OAuth2ClientSpec {
            grant_types: vec!["client_credentials".into()],
            scope: "read".into(),
            scope_array: vec!["write".into(), "read".into()],
            secret_name: "creds".into(),
            ..Default::default()
        });
        let reg = registration(&c, None);
        assert_eq!(reg.owner, "app/apps");
        let stored = validate(&reg).unwrap();
        assert_eq!(stored.scope, "write read");
        assert_eq!(stored.metadata, serde_json::json!({}));

        let mut bad = c.clone();
        bad.spec.grant_types = vec!["authorization_code".into()];
        assert!(
            validate(&registration(&bad, None))
                .unwrap_err()
                .contains("redirect_uri")
        );
        let mut bad = c.clone();
        bad.spec.token_endpoint_auth_method = "private_key_jwt".into();
        assert!(validate(&registration(&bad, None)).is_err());
    }

    #[test]
    fn fingerprint_covers_the_secret() {
        let c = client(OAuth2ClientSpec {
            grant_types: vec!["client_credentials".into()],
            secret_name: "creds".into(),
            ..Default::default()
        });
        let a = Credentials {
            client_id: "app".into(),
            client_secret: Some("first-secret".into()),
        };
        let b = Credentials {
            client_secret: Some("second-secret".into()),
            ..a.clone()
        };
        assert_ne!(
            fingerprint(&registration(&c, Some(&a))),
            fingerprint(&registration(&c, Some(&b)))
        );
        assert!(!format!("{a:?}").contains("first-secret"));
    }
}
