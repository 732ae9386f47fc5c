// The paths each edgeid Worker serves: the URL map of DESIGN.md (`edgeid::Function::for_path`),
// keyed by the function name of its `wrangler.<function>.jsonc`. The one source for both
// runner.mjs (local: host `*`, one origin) and deploy.mjs (an account: routes on the issuer's
// hostname). Add a function here when you add its wrangler config; deploy.mjs refuses a config
// without paths and paths without a config.
//
// Each entry is a route path pattern: it starts with `/`, may end in `*`, and has no `?` —
// Miniflare's routes match path plus query, so a trailing `*` also takes a query string, and
// Cloudflare's route patterns allow `*` only at the end of the path.
export const ROUTES = {
  discovery: ["/.well-known/openid-configuration*", "/.well-known/jwks.json*"],
  token: ["/oauth2/token*"],
  // `/admin*` also takes `/administrator`: the admin Worker answers 404 for it, as the core routes.
  admin: ["/admin*"],
};
