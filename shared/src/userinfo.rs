//! Placeholder while the flow is written.

use crate::{Ports, Request, Response, web};

pub async fn handle<P: Ports>(_ports: &P, _req: Request) -> Response {
    web::not_found()
}
