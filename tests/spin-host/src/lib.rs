//! A Spin-compatible test host for the edgeid components, for machines without the `spin` CLI
//! (it is on no registry reachable here). It reads `spin.toml`, routes HTTP like Spin's HTTP
//! trigger and implements exactly what the components import: WASI 0.2 (cli, io, clocks,
//! random, filesystem, sockets — all denied but what std needs), `wasi:http` 0.2, and
//! `fermyon:spin/{key-value,sqlite,variables}@2.0.0` on SQLite files laid out as `spin up`
//! lays out `.spin/`, plus the SQLite databases a runtime config (`--runtime-config-file`) adds.
//! The WASIp3 build (spin-sdk 7) is served too: WASI 0.3, `wasi:http@0.3.0` and
//! `spin:{key-value,sqlite,variables}@3` on the same stores, with Spin 4.1's instance reuse.
//!
//! The pure parts (manifest, routing, variables) are public so their tests need no component.

pub mod host;
pub mod host3;
pub mod manifest;
pub mod routing;
pub mod runtime_config;
pub mod server;
pub mod store;
pub mod variables;
