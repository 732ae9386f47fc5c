// The paths each edgeid Worker serves: the URL map of DESIGN.md (`edgeid::Function::for_path`),
// keyed by the function name of its `wrangler.<function>.jsonc`. The one source for both
// runner.mjs (local: host `*`, one origin) and deploy.mjs (an account: routes on the issuer's
// hostname). Add a function here when you add its wrangler config; deploy.mjs refuses a config
// without paths and paths without a config.
//
// Each entry is a route path pattern: it starts with `/`, may end in `*`, and has no `?` —
// Miniflare's routes match path plus query, so a trailing `*` also takes a query string, and
// Cloudflare's route patterns allow `*` only at the end of the path.
//
// A trailing `*` also takes longer paths (`/loginx`, `/administrator`): the Worker answers 404
// for those, as the core routes.
export const ROUTES = {
  discovery: ["/.well-known/openid-configuration*", "/.well-known/jwks.json*"],
  authorize: ["/oauth2/auth*"],
  token: ["/oauth2/token*", "/oauth2/revoke*", "/oauth2/introspect*"],
  userinfo: ["/userinfo*"],
  login: ["/login*", "/settings*", "/consent*", "/logout*", "/oauth2/sessions/logout*", "/assets/*"],
  // The bearer API, the console (/admin/console/...) and the launcher at exactly `/`.
  admin: ["/admin*", "/"],
  recovery: ["/recovery*"],
};
