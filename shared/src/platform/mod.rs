//! Platform adapters, one per host, each behind its cargo feature. Nothing else in the core
//! imports them; they only implement [`crate::ports::Ports`] and convert requests.

#[cfg(any(test, feature = "spin", feature = "spin3", feature = "cloudflare"))]
pub(crate) mod busy;
#[cfg(feature = "cloudflare")]
pub mod cloudflare;
#[cfg(any(test, feature = "spin3", feature = "cloudflare"))]
pub mod memo;
#[cfg(feature = "native")]
pub mod native;
// The Spin SDKs are dependencies on `wasm32-wasip*` only, so a Worker build that also names
// the `spin` feature (the function crates' default) compiles neither adapter.
#[cfg(all(feature = "spin", target_os = "wasi"))]
pub mod spin;
#[cfg(all(feature = "spin3", target_os = "wasi"))]
pub mod spin3;
