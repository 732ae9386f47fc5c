//! Spin's HTTP routing, as `spin up` applies it to `[[trigger.http]] route = ...`.
//!
//! - `"/p"` is exact: it matches `/p` (and `/p/`, since Spin strips one trailing slash).
//! - `"/p/..."` (or `"/p/*"`) is a trailing wildcard: it matches `/p`, `/p/` and `/p/<anything>`;
//!   `"/..."` matches every path.
//! - An exact route beats any wildcard; among wildcards the longest prefix (most segments)
//!   wins. Routes are compared by whole path segments, so `/p/...` never matches `/px`.
//! - When two triggers declare the same route, the later one wins (Spin warns likewise).
//!
//! Named segments (`/users/:id`) are refused: edgeid does not use them and the test host does
//! not pretend to support what it does not implement.

use anyhow::bail;

/// One `[[trigger.http]]` route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The route as written in the manifest (`spin-raw-component-route`, `spin-matched-route`).
    pub raw: String,
    pub pattern: Pattern,
    pub component: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// A sanitized path without its trailing slash; `""` is the root.
    Exact(String),
    /// The prefix before `/...`, sanitized; `""` matches everything.
    Wildcard(String),
}

/// What a request path matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    pub component: &'a str,
    /// The route as written (`spin-matched-route`, `spin-raw-component-route`).
    pub raw_route: &'a str,
    /// The route without a trailing wildcard (`spin-component-route`).
    pub component_route: &'a str,
    /// The part of the path after a wildcard's prefix (`spin-path-info`); empty for exact routes.
    pub path_info: String,
}

impl Route {
    pub fn parse(raw: &str, component: &str) -> anyhow::Result<Route> {
        let based = sanitize(&absolutize(raw));
        let pattern = if let Some(prefix) = based
            .strip_suffix("/...")
            .or_else(|| based.strip_suffix("/*"))
        {
            Pattern::Wildcard(prefix.to_owned())
        } else {
            Pattern::Exact(based.clone())
        };
        let prefix = match &pattern {
            Pattern::Exact(p) | Pattern::Wildcard(p) => p,
        };
        if prefix
            .split('/')
            .any(|seg| seg.starts_with(':') || seg == "*" || seg == "...")
        {
            bail!("route {raw:?}: named or inner wildcards are not supported by the test host");
        }
        Ok(Route {
            raw: raw.to_owned(),
            pattern,
            component: component.to_owned(),
        })
    }
}

/// The routing table of one application.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Builds the table; a later route with the same pattern replaces an earlier one.
    pub fn new(routes: impl IntoIterator<Item = Route>) -> Router {
        let mut table: Vec<Route> = Vec::new();
        for route in routes {
            if let Some(existing) = table.iter_mut().find(|r| r.pattern == route.pattern) {
                eprintln!(
                    "warning: route {:?} of component {:?} replaces the same route of component {:?}",
                    route.raw, route.component, existing.component
                );
                *existing = route;
            } else {
                table.push(route);
            }
        }
        Router { routes: table }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The best route for a request path (no query), or `None` (the host answers 404).
    pub fn route(&self, path: &str) -> Option<RouteMatch<'_>> {
        let sanitized = sanitize(path);
        let exact = self
            .routes
            .iter()
            .find(|r| matches!(&r.pattern, Pattern::Exact(p) if *p == sanitized));
        if let Some(r) = exact {
            return Some(RouteMatch {
                component: &r.component,
                raw_route: &r.raw,
                component_route: &r.raw,
                path_info: String::new(),
            });
        }
        self.routes
            .iter()
            .filter_map(|r| match &r.pattern {
                Pattern::Wildcard(prefix) => trailing(path, prefix).map(|rest| (r, prefix, rest)),
                Pattern::Exact(_) => None,
            })
            .max_by_key(|(_, prefix, _)| prefix.split('/').count())
            .map(|(r, _, rest)| RouteMatch {
                component: &r.component,
                raw_route: &r.raw,
                component_route: r
                    .raw
                    .strip_suffix("/...")
                    .or_else(|| r.raw.strip_suffix("/*"))
                    .unwrap_or(&r.raw),
                path_info: rest.to_owned(),
            })
    }
}

/// The rest of `path` after a wildcard `prefix`, when `path` is `prefix` or below it.
fn trailing<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn absolutize(s: &str) -> String {
    if s.starts_with('/') {
        s.to_owned()
    } else {
        format!("/{s}")
    }
}

/// Strips one trailing slash, as Spin does (so `/` becomes the empty root).
fn sanitize(s: &str) -> String {
    s.strip_suffix('/').unwrap_or(s).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        Router::new(routes.iter().map(|(r, c)| {
            // Test routes are literals known to parse.
            #[allow(clippy::unwrap_used)]
            Route::parse(r, c).unwrap()
        }))
    }

    #[test]
    fn path_info_follows_spin() {
        let r = router(&[("/foo/...", "f")]);
        let info = |p: &str| r.route(p).map(|m| m.path_info);
        assert_eq!(info("/foo").as_deref(), Some(""));
        assert_eq!(info("/foo/").as_deref(), Some("/"));
        assert_eq!(info("/foo/bar").as_deref(), Some("/bar"));
        assert_eq!(info("/foo/bar/").as_deref(), Some("/bar/"));
        assert_eq!(info("/foobar"), None);
    }

    #[test]
    fn root_wildcard_matches_everything() {
        let r = router(&[("/...", "all")]);
        let m = r.route("/x/y");
        assert_eq!(m.as_ref().map(|m| m.component), Some("all"));
        assert_eq!(m.map(|m| m.path_info).as_deref(), Some("/x/y"));
        assert!(r.route("/").is_some());
    }

    #[test]
    fn named_segments_are_refused() {
        assert!(Route::parse("/users/:id", "u").is_err());
        assert!(Route::parse("/a/.../b", "u").is_err());
    }
}
