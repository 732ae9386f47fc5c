//! The `recovery` function: builds the host's ports and hands the request to the core.
//! Spin component on `wasm32-wasip2`, Cloudflare Worker on `wasm32-unknown-unknown`.

// The SDK macros expand to `unsafe` export glue inside these modules; no unsafe code of ours.
#[cfg(all(target_os = "wasi", feature = "wasip2", feature = "wasip3"))]
compile_error!("the two Spin builds exclude each other: --no-default-features --features wasip3");

#[cfg(all(target_os = "wasi", feature = "wasip2", not(feature = "wasip3")))]
#[allow(unsafe_code)]
mod spin {
    #[spin_sdk::http_component]
    async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
        edgeid::platform::spin::handle(edgeid::Function::Recovery, req, edgeid::recovery::handle)
            .await
    }
}

#[cfg(all(target_os = "wasi", feature = "wasip3"))]
#[allow(unsafe_code)]
mod spin3 {
    edgeid::spin3_http_handler!(edgeid::Function::Recovery, edgeid::recovery::handle);
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[allow(unsafe_code)]
mod cloudflare {
    #[worker::event(fetch)]
    async fn fetch(
        req: worker::Request,
        env: worker::Env,
        _ctx: worker::Context,
    ) -> worker::Result<worker::Response> {
        edgeid::platform::cloudflare::handle(
            edgeid::Function::Recovery,
            req,
            env,
            edgeid::recovery::handle,
        )
        .await
    }
}
