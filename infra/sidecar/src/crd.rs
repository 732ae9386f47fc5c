//! The `OAuth2Client` custom resource (`hydra.ory.sh/v1alpha1`), schema-compatible with the
//! one Ory hydra-maester installs, so manifests written for it apply unchanged and either CRD
//! may be the one installed.
//!
//! Fields are kept as plain strings and lists: a value the provider cannot use must become a
//! status error on the resource (through the core's registration rules), not an object the
//! controller cannot even deserialize. The schema constraints the API server enforces are the
//! hydra-maester ones, written out with `schema_with`.

use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The API group and version shared with hydra-maester.
pub const API_VERSION: &str = "hydra.ory.sh/v1alpha1";
/// The kind shared with hydra-maester.
pub const KIND: &str = "OAuth2Client";

/// OAuth2ClientSpec defines the desired state of OAuth2Client
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "hydra.ory.sh",
    version = "v1alpha1",
    kind = "OAuth2Client",
    plural = "oauth2clients",
    singular = "oauth2client",
    namespaced,
    status = "OAuth2ClientStatus",
    doc = "OAuth2Client is the Schema for the oauth2clients API"
)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2ClientSpec {
    /// ClientName is the human-readable string name of the client to be presented to the end-user during authorization.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_name: String,

    /// GrantTypes is an array of grant types the client is allowed to use.
    #[schemars(schema_with = "grant_types")]
    pub grant_types: Vec<String>,

    /// ResponseTypes is an array of the OAuth 2.0 response type strings that the client can
    /// use at the authorization endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "response_types")]
    pub response_types: Vec<String>,

    /// RedirectURIs is an array of the redirect URIs allowed for the application
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "redirect_uris")]
    pub redirect_uris: Vec<String>,

    /// RequestURIs is an array of request URIs that can be used in authorization requests
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "redirect_uris")]
    pub request_uris: Vec<String>,

    /// PostLogoutRedirectURIs is an array of the post logout redirect URIs allowed for the application
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "redirect_uris")]
    pub post_logout_redirect_uris: Vec<String>,

    /// AllowedCorsOrigins is an array of allowed CORS origins
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "redirect_uris")]
    pub allowed_cors_origins: Vec<String>,

    /// Audience is a whitelist defining the audiences this client is allowed to request tokens for
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<String>,

    /// Scope is a string containing a space-separated list of scope values (as
    /// described in Section 3.3 of OAuth 2.0 [RFC6749]) that the client
    /// can use when requesting access tokens.
    /// Use scopeArray instead.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(schema_with = "scope")]
    pub scope: String,

    /// Scope is an array of scope values (as described in Section 3.3 of OAuth 2.0 [RFC6749])
    /// that the client can use when requesting access tokens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope_array: Vec<String>,

    /// SecretName points to the K8s secret that contains this client's ID and password
    #[schemars(schema_with = "secret_name")]
    pub secret_name: String,

    /// SkipConsent skips the consent screen for this client.
    #[serde(default)]
    #[schemars(schema_with = "bool_false")]
    pub skip_consent: bool,

    /// HydraAdmin is the optional configuration to use for managing
    /// this client. Accepted for compatibility and ignored: the sidecar talks to the admin API
    /// it is configured with (`EDGEID_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "hydra_admin")]
    pub hydra_admin: Option<serde_json::Value>,

    /// Indication which authentication method should be used for the token endpoint
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(schema_with = "token_endpoint_auth_method")]
    pub token_endpoint_auth_method: String,

    /// TokenLifespans is the configuration to use for managing different token lifespans
    /// depending on the used grant type. Accepted for compatibility and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "token_lifespans")]
    pub token_lifespans: Option<serde_json::Value>,

    /// Metadata is arbitrary data
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "metadata")]
    pub metadata: Option<serde_json::Value>,

    /// JwksUri Define the URL where the JSON Web Key Set should be fetched from when performing the private_key_jwt client authentication method.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(schema_with = "http_url")]
    pub jwks_uri: String,

    /// FrontChannelLogoutSessionRequired Boolean value specifying whether the RP requires that iss (issuer) and sid (session ID) query parameters be included to identify the RP session with the OP when the frontchannel_logout_uri is used
    #[serde(default)]
    #[schemars(schema_with = "bool_false")]
    pub front_channel_logout_session_required: bool,

    /// FrontChannelLogoutURI RP URL that will cause the RP to log itself out when rendered in an iframe by the OP.
    #[serde(
        default,
        rename = "frontChannelLogoutURI",
        skip_serializing_if = "String::is_empty"
    )]
    #[schemars(schema_with = "http_url")]
    pub front_channel_logout_uri: String,

    /// BackChannelLogoutSessionRequired Boolean value specifying whether the RP requires that a sid (session ID) Claim be included in the Logout Token to identify the RP session with the OP when the backchannel_logout_uri is used. If omitted, the default value is false.
    #[serde(default)]
    #[schemars(schema_with = "bool_false")]
    pub back_channel_logout_session_required: bool,

    /// BackChannelLogoutURI RP URL that will cause the RP to log itself out when sent a Logout Token by the OP
    #[serde(
        default,
        rename = "backChannelLogoutURI",
        skip_serializing_if = "String::is_empty"
    )]
    #[schemars(schema_with = "http_url")]
    pub back_channel_logout_uri: String,

    /// Indicates if a deleted OAuth2Client custom resource should delete the database row or not.
    /// Values can be 'delete' to delete the OAuth2 client, value 'orphan' to keep an orphan oauth2 client.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(schema_with = "deletion_policy")]
    pub deletion_policy: String,

    /// LogoUri is the URI to the logo of the client.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(schema_with = "http_url")]
    pub logo_uri: String,

    /// AccessTokenStrategy is the OAuth 2.0 Access Token Strategy
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(schema_with = "access_token_strategy")]
    pub access_token_strategy: String,

    /// ClientSecretExpiresAt is the timestamp when the client secret expires (currently always 0)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "non_negative_int64")]
    pub client_secret_expires_at: Option<i64>,

    /// ClientUri is a URL string of a web page providing information about the client
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(schema_with = "http_url")]
    pub client_uri: String,

    /// Contacts is an array of strings representing ways to contact people responsible for this client
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,

    /// PolicyUri is a URL string that points to a human-readable privacy policy document
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(schema_with = "http_url")]
    pub policy_uri: String,

    /// RequestObjectSigningAlg is the algorithm that must be used for signing request objects
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_object_signing_alg: String,

    /// SectorIdentifierUri is a URL using the https scheme to be used in calculating Pseudonymous Identifiers
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(schema_with = "http_url")]
    pub sector_identifier_uri: String,

    /// SkipLogoutConsent skips asking the user to confirm the logout request
    #[serde(default)]
    #[schemars(schema_with = "bool_false")]
    pub skip_logout_consent: bool,

    /// SubjectType is the requested subject type
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(schema_with = "subject_type")]
    pub subject_type: String,

    /// TokenEndpointAuthSigningAlg is the algorithm used to sign JWT tokens for client authentication
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token_endpoint_auth_signing_alg: String,

    /// TosUri is a URL string that points to a human-readable terms of service document
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(schema_with = "http_url")]
    pub tos_uri: String,

    /// UserinfoSignedResponseAlg is the algorithm used to sign UserInfo responses
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub userinfo_signed_response_alg: String,

    /// RequireExistingSecret makes the controller wait for the Secret named by secretName
    /// instead of having the provider generate credentials and creating the Secret itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_existing_secret: Option<bool>,
}

/// OAuth2ClientStatus defines the observed state of OAuth2Client
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2ClientStatus {
    /// ObservedGeneration represents the most recent generation observed by the daemon set controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int64")]
    pub observed_generation: Option<i64>,
    /// ReconciliationError represents an error that occurred during the reconciliation process
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciliation_error: Option<ReconciliationError>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<OAuth2ClientCondition>,
}

/// ReconciliationError represents an error that occurred during the reconciliation process
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconciliationError {
    /// Code is the status code of the reconciliation error
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_code: String,
    /// Description is the description of the reconciliation error
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// OAuth2ClientCondition contains condition information for an OAuth2Client
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct OAuth2ClientCondition {
    #[serde(rename = "type")]
    pub type_: String,
    #[schemars(schema_with = "condition_status")]
    pub status: String,
}

/// hydra-maester's `reconciliationError.statusCode` values, kept so dashboards and alerts
/// written for it keep matching.
pub mod status_code {
    pub const REGISTRATION_FAILED: &str = "CLIENT_REGISTRATION_FAILED";
    pub const CREATE_SECRET_FAILED: &str = "SECRET_CREATION_FAILED";
    pub const UPDATE_FAILED: &str = "CLIENT_UPDATE_FAILED";
    pub const INVALID_SECRET: &str = "INVALID_SECRET";
    pub const SECRET_NOT_FOUND: &str = "SECRET_NOT_FOUND";
    pub const INVALID_HYDRA_ADDRESS: &str = "INVALID_HYDRA_ADDRESS";
    /// edgeid's own: the namespace's policy does not allow what the resource asks for
    /// ([`crate::policy`]).
    pub const POLICY_REFUSED: &str = "CLIENT_POLICY_REFUSED";
}

impl OAuth2Client {
    /// `name/namespace`: the `owner` hydra-maester recorded on the clients it created, so
    /// clients it registered are recognised as this resource's.
    pub fn owner(&self) -> String {
        format!(
            "{}/{}",
            self.metadata.name.as_deref().unwrap_or_default(),
            self.metadata.namespace.as_deref().unwrap_or_default()
        )
    }

    /// The effective scope: `scopeArray` then the deprecated `scope`, as hydra-maester joins
    /// them.
    pub fn scope(&self) -> String {
        let mut parts: Vec<&str> = self.spec.scope_array.iter().map(String::as_str).collect();
        parts.push(&self.spec.scope);
        parts.join(" ").trim().to_owned()
    }

    pub fn orphans_on_delete(&self) -> bool {
        self.spec.deletion_policy.eq_ignore_ascii_case("orphan")
    }
}

// ---- schema pieces, as hydra-maester's CRD declares them ----

const REDIRECT_URI_PATTERN: &str = r"\w+:/?/?[^\s]+";
const HTTP_URL_PATTERN: &str = r"(^$|^https?://.*)";
const LIFESPAN_PATTERN: &str = "[0-9]+(ns|us|ms|s|m|h)";

fn grant_types(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "GrantTypes is an array of grant types the client is allowed to use.",
        "type": "array",
        "minItems": 1,
        "maxItems": 4,
        "items": {
            "description": "GrantType represents an OAuth 2.0 grant type",
            "type": "string",
            "enum": ["client_credentials", "authorization_code", "implicit", "refresh_token"]
        }
    })
}

fn response_types(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "ResponseTypes is an array of the OAuth 2.0 response type strings that the client can\nuse at the authorization endpoint.",
        "type": "array",
        "minItems": 1,
        "maxItems": 3,
        "items": {
            "description": "ResponseType represents an OAuth 2.0 response type strings",
            "type": "string",
            "enum": ["id_token", "code", "token", "code token", "code id_token", "id_token token", "code id_token token"]
        }
    })
}

fn redirect_uris(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "description": "RedirectURI represents a redirect URI for the client",
            "type": "string",
            "pattern": REDIRECT_URI_PATTERN
        }
    })
}

fn scope(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "pattern": r"([a-zA-Z0-9\.\*]+\s?)*"})
}

fn secret_name(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": 253,
        "pattern": r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
    })
}

fn bool_false(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "boolean", "default": false})
}

fn http_url(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "pattern": HTTP_URL_PATTERN})
}

fn hydra_admin(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "properties": {
            "endpoint": {"type": "string", "pattern": "(^$|^/.*)"},
            "forwardedProto": {"type": "string", "pattern": "(^$|https?|off)"},
            "port": {"type": "integer", "maximum": 65535},
            "url": {"type": "string", "maxLength": 64, "pattern": HTTP_URL_PATTERN}
        }
    })
}

fn token_endpoint_auth_method(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "enum": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
    })
}

fn token_lifespans(_: &mut SchemaGenerator) -> Schema {
    let lifespan = serde_json::json!({"type": "string", "pattern": LIFESPAN_PATTERN});
    let mut properties = serde_json::Map::new();
    for name in [
        "authorization_code_grant_access_token_lifespan",
        "authorization_code_grant_id_token_lifespan",
        "authorization_code_grant_refresh_token_lifespan",
        "client_credentials_grant_access_token_lifespan",
        "implicit_grant_access_token_lifespan",
        "implicit_grant_id_token_lifespan",
        "jwt_bearer_grant_access_token_lifespan",
        "refresh_token_grant_access_token_lifespan",
        "refresh_token_grant_id_token_lifespan",
        "refresh_token_grant_refresh_token_lifespan",
    ] {
        properties.insert(name.to_owned(), lifespan.clone());
    }
    json_schema!({"type": "object", "properties": properties})
}

fn metadata(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "nullable": true,
        "x-kubernetes-preserve-unknown-fields": true
    })
}

fn deletion_policy(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "enum": ["delete", "orphan"]})
}

fn access_token_strategy(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "enum": ["jwt", "opaque"]})
}

fn subject_type(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "enum": ["public", "pairwise"]})
}

fn non_negative_int64(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "format": "int64", "minimum": 0})
}

fn int64(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "format": "int64"})
}

fn condition_status(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "enum": ["True", "False", "Unknown"]})
}

/// The CRD as YAML, the way `crdgen` prints it and `infra/k8s/crd.yaml` holds it.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    use kube::CustomResourceExt;
    serde_yaml::to_string(&OAuth2Client::crd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_hydra_maester_manifest_unchanged() {
        let manifest = r#"
apiVersion: hydra.ory.sh/v1alpha1
kind: OAuth2Client
metadata: {name: my-app, namespace: apps}
spec:
  grantTypes: [client_credentials]
  scope: "read write"
  scopeArray: [admin]
  secretName: my-app-secret
  hydraAdmin: {url: "http://hydra-admin", port: 4445, endpoint: /admin/clients}
  tokenLifespans: {client_credentials_grant_access_token_lifespan: 1h}
  frontChannelLogoutURI: https://app.example/logout
  deletionPolicy: orphan
  metadata: {team: blue}
"#;
        let c: OAuth2Client = serde_yaml::from_str(manifest).unwrap();
        assert_eq!(c.owner(), "my-app/apps");
        assert_eq!(c.scope(), "admin read write");
        assert!(c.orphans_on_delete());
        assert_eq!(
            c.spec.front_channel_logout_uri,
            "https://app.example/logout"
        );
        assert_eq!(c.spec.metadata, Some(serde_json::json!({"team": "blue"})));
    }

    #[test]
    fn crd_names_and_required_fields_match_hydra_maester() {
        use kube::CustomResourceExt;
        let crd = serde_json::to_value(OAuth2Client::crd()).unwrap();
        assert_eq!(crd["metadata"]["name"], "oauth2clients.hydra.ory.sh");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], "v1alpha1");
        assert_eq!(version["subresources"]["status"], serde_json::json!({}));
        let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(
            spec["required"],
            serde_json::json!(["grantTypes", "secretName"])
        );
        assert_eq!(
            spec["properties"]["metadata"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
    }
}
