//! `edgeid-sidecar`: keeps edgeid's OAuth 2.0 clients equal to the cluster's `OAuth2Client`
//! resources (`hydra.ory.sh/v1alpha1`, the schema Ory hydra-maester defined) and the Secrets
//! they name, through the provider's admin API.
//!
//! - [`crd`]: the custom resource, schema-compatible with hydra-maester's CRD;
//! - [`registration`]: resource + Secret -> the registration the provider should hold, checked
//!   with the core's own rules (`edgeid::client`);
//! - [`policy`]: the operator's policy per namespace (allowed audiences, `skipConsent`,
//!   scopes), applied before anything is written;
//! - [`admin`]: the admin API client;
//! - [`controller`]: reconcile inside kube-runtime's finalizer, error policy, status, run loop.

pub mod admin;
pub mod controller;
pub mod crd;
pub mod policy;
pub mod registration;

pub use controller::{
    Context, Error, FINALIZER, LEGACY_FINALIZER, Settings, error_policy, reconcile, run,
};
pub use crd::{OAuth2Client, OAuth2ClientSpec, OAuth2ClientStatus};
pub use policy::Policy;
