//! Platform adapters, one per host, each behind its cargo feature. Nothing else in the core
//! imports them; they only implement [`crate::ports::Ports`] and convert requests.

#[cfg(any(test, feature = "spin", feature = "cloudflare"))]
pub(crate) mod busy;
#[cfg(feature = "cloudflare")]
pub mod cloudflare;
#[cfg(any(test, feature = "cloudflare"))]
pub mod memo;
#[cfg(feature = "native")]
pub mod native;
#[cfg(feature = "spin")]
pub mod spin;
