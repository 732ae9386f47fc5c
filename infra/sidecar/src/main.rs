//! `edgeid-sidecar`: the Kubernetes client-sync controller (see the crate docs).

use std::process::ExitCode;
use std::sync::Arc;

use futures::FutureExt;

use edgeid_sidecar::{Context, Settings, run};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .init();
    // One TLS provider for both the Kubernetes client and the admin API client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = match Settings::from_env(|name| std::env::var(name).ok()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("Kubernetes client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ctx = match Context::new(client, settings) {
        Ok(ctx) => Arc::new(ctx),
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(namespaces = ?ctx.settings.namespaces, "edgeid-sidecar started");
    // Kubernetes stops a pod with SIGTERM; a terminal with SIGINT.
    let shutdown = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    .boxed()
    .shared();
    run(ctx, shutdown).await;
    ExitCode::SUCCESS
}
