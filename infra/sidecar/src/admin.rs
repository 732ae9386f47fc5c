//! A client for edgeid's admin API (`/admin/clients`): bearer-authenticated JSON with Hydra's
//! field names (docs/admin-api.md).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

/// A registration as the sidecar sends it. `client_id`/`client_secret` are absent when the
/// provider is to generate them; fields the core does not know are never sent (its input
/// type denies unknown fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Registration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub client_name: String,
    pub grant_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scope: String,
    pub audience: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    pub skip_consent: bool,
    pub owner: String,
    pub metadata: serde_json::Value,
}

/// A created client: the provider's answer to `POST /admin/clients`, which carries a
/// generated secret exactly once.
#[derive(Debug, Clone, Deserialize)]
pub struct Created {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Page {
    clients: Vec<edgeid::client::Client>,
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The provider could not be reached or failed on its side (5xx, transport): retried
    /// with backoff.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request (4xx): the resource's spec or credentials must change.
    #[error("provider refused the request ({status}, {error}): {description}")]
    Refused {
        status: u16,
        error: String,
        description: String,
    },
}

impl AdminError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, AdminError::Refused { status: 409, .. })
    }
}

/// The admin API of one provider.
#[derive(Clone)]
pub struct AdminApi {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl AdminApi {
    pub fn new(base_url: &str, token: &str) -> Result<Self, AdminError> {
        // One TLS provider for the process (ring, as the Kubernetes client uses); installing
        // it again is a no-op that reports the one already there.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| AdminError::Unavailable(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    fn client_url(&self, id: &str) -> String {
        // Ids are validated by the core's rules (RFC 3986 unreserved plus `:` and `@`), which
        // are all legal in a path segment.
        format!("{}/admin/clients/{id}", self.base)
    }

    async fn send(
        &self,
        method: Method,
        url: String,
        body: Option<&Registration>,
    ) -> Result<(StatusCode, Vec<u8>), AdminError> {
        let mut req = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?
            .to_vec();
        if status.is_server_error() {
            return Err(AdminError::Unavailable(format!(
                "{status}: {}",
                String::from_utf8_lossy(&bytes)
            )));
        }
        Ok((status, bytes))
    }

    fn refused(status: StatusCode, body: &[u8]) -> AdminError {
        let e: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
        AdminError::Refused {
            status: status.as_u16(),
            error: e.error,
            description: e.error_description,
        }
    }

    /// `GET /admin/clients/{id}`; `None` when there is no such client.
    pub async fn get(&self, id: &str) -> Result<Option<edgeid::client::Client>, AdminError> {
        let (status, body) = self.send(Method::GET, self.client_url(id), None).await?;
        match status {
            StatusCode::OK => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| AdminError::Unavailable(format!("unreadable client record: {e}"))),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(Self::refused(s, &body)),
        }
    }

    /// `POST /admin/clients`; `409` when the id exists.
    pub async fn create(&self, reg: &Registration) -> Result<Created, AdminError> {
        let url = format!("{}/admin/clients", self.base);
        let (status, body) = self.send(Method::POST, url, Some(reg)).await?;
        match status {
            StatusCode::CREATED | StatusCode::OK => serde_json::from_slice(&body)
                .map_err(|e| AdminError::Unavailable(format!("unreadable client record: {e}"))),
            s => Err(Self::refused(s, &body)),
        }
    }

    /// `PUT /admin/clients/{id}` (the stored secret is kept when `client_secret` is absent).
    pub async fn update(&self, id: &str, reg: &Registration) -> Result<(), AdminError> {
        let (status, body) = self
            .send(Method::PUT, self.client_url(id), Some(reg))
            .await?;
        match status {
            s if s.is_success() => Ok(()),
            s => Err(Self::refused(s, &body)),
        }
    }

    /// `DELETE /admin/clients/{id}`; a client already gone is not an error.
    pub async fn delete(&self, id: &str) -> Result<(), AdminError> {
        let (status, body) = self.send(Method::DELETE, self.client_url(id), None).await?;
        match status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            s => Err(Self::refused(s, &body)),
        }
    }

    /// Every client whose `owner` is `owner`, walking the keyset pages.
    pub async fn owned_by(&self, owner: &str) -> Result<Vec<String>, AdminError> {
        let mut ids = Vec::new();
        let mut after = String::new();
        loop {
            let url = format!(
                "{}/admin/clients?limit=500&after={}",
                self.base,
                form_encode(&after)
            );
            let (status, body) = self.send(Method::GET, url, None).await?;
            if status != StatusCode::OK {
                return Err(Self::refused(status, &body));
            }
            let page: Page = serde_json::from_slice(&body)
                .map_err(|e| AdminError::Unavailable(format!("unreadable client list: {e}")))?;
            ids.extend(
                page.clients
                    .into_iter()
                    .filter(|c| c.owner == owner)
                    .map(|c| c.client_id),
            );
            match page.next {
                Some(next) if !next.is_empty() => after = next,
                _ => return Ok(ids),
            }
        }
    }
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
