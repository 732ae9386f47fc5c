//! Console pages: apps (issue 11). Being built; until then every path here is 404.

use super::Ctx;
use crate::error::OAuthError;
use crate::ports::Ports;
use crate::{Request, Response, web};

pub async fn route<P: Ports>(
    _ports: &P,
    _ctx: &Ctx<'_>,
    _req: &Request,
    _form: &web::Form,
) -> Result<Response, OAuthError> {
    Ok(web::not_found())
}
