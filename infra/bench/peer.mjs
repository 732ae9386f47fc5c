// The peer `cargo xtask bench` measures edgeid against: the npm package `oidc-provider`
// (pinned in package.json), set up to be as fast as it can be for the same work edgeid does on
// the benchmarked paths, and no more.
//
//   NODE_ENV=production node peer.mjs --port 8790 [--host 127.0.0.1]
//
// What it serves:
// - issuer = the listen URL; discovery at /.well-known/openid-configuration, JWKS, token,
//   authorization and userinfo endpoints where discovery says;
// - client `bench` (secret `bench-secret-123456`, `client_secret_basic`) allowed only
//   `client_credentials` with scope `read`: its access tokens are RFC 9068 JWTs (`typ: at+jwt`)
//   signed ES256, 900 s, as edgeid issues them. oidc-provider issues JWT access tokens only
//   through a Resource Server (`resourceIndicators`) whose `accessTokenFormat` is `jwt`; the
//   default resource makes every client_credentials request get one without carrying a
//   `resource` parameter (edgeid's request carries none either);
// - client `bench-rp` (secret `bench-rp-secret-123456`, `client_secret_basic`): the code flow
//   with PKCE to http://127.0.0.1:9/cb, RS256 ID tokens, consent skipped (a first-party
//   client, like edgeid's `skip_consent`: `loadExistingGrant` grants `openid` itself); sign-in
//   through oidc-provider's development interactions, which take any login name and check no
//   password (so the bench compares edgeid's sign-in "apart from argon2" with this);
//   its access tokens stay opaque (in the in-memory adapter): oidc-provider's userinfo only
//   accepts tokens issued for itself, not JWTs for a resource server;
// - the JWKS publishes one ES256 and one RS256 key: the keys edgeid signs with (its current
//   key per algorithm). edgeid's JWKS also pre-publishes the next key of each algorithm for
//   rotation (4 keys after provisioning); the peer rotates nothing, so its document is smaller;
// - storage: oidc-provider's own in-memory adapter (JWT access tokens are not stored at all)
//   on an unbounded map with expiry instead of its default 1,000-entry LRU, which drops codes
//   of a sign-in bench that runs hundreds of flows a second before they are redeemed.
//
// Checked in oidc-provider 9.13.3 (the version pinned in package.json and installed; the newest
// release, `npm view oidc-provider dist-tags` on 2026-12-02) and koa 3, for speed:
// - NODE_ENV=production: oidc-provider 9 never reads NODE_ENV; koa only copies it to `app.env`
//   (which nothing on these paths reads). It is set anyway, as a production deployment would.
//   `DEBUG` is unset (the `debug` package logs nothing), no event listeners are attached.
// - client authentication `client_secret_basic` compares the secret in constant time; no
//   hashing. Static clients are parsed once at start-up.
// - client_credentials: no DPoP, mTLS, RAR or extra claims configured, so `validateDpop`,
//   `checkMtlsCert` and `applyAuthorizationDetails` return at once; `extraTokenClaims` is the
//   default (none); the token is signed with a `KeyObject` (Node's OpenSSL), not stored.
// - the request carries what edgeid's does: `grant_type=client_credentials&scope=read` with
//   HTTP Basic, nothing else.
// - Node runs with its default flags (heap and GC tuning such as --max-semi-space-size showed
//   no difference above this shared machine's noise).
// - one Node process: Node runs JavaScript on one thread; a cluster would need a shared store
//   for the sign-in flow's sessions and codes, which the in-memory adapter is not. edgeid's
//   native host uses one thread per CPU; the report says so.
//
// Prints `Serving http://HOST:PORT` once listening; exits 0 on SIGTERM/SIGINT.

import { generateKeyPairSync } from "node:crypto";
import { parseArgs } from "node:util";

import Provider from "oidc-provider";
import MemoryAdapter from "oidc-provider/lib/adapters/memory_adapter.js";

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8790" },
  },
});
const port = Number(args.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`peer: bad --port ${args.port}`);
  process.exit(2);
}
const issuer = `http://${args.host.includes(":") ? `[${args.host}]` : args.host}:${port}`;

/** A private JWK with the fields oidc-provider's keystore wants. */
function privateJwk(type, options, alg, kid) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: "jwk" }), alg, use: "sig", kid };
}

/** The store MemoryAdapter keeps its records in: `get`/`set(key, value, { maxAge })`/`delete`,
 *  like its LRU, but never evicting an entry before it expires. */
class ExpiringMap {
  #map = new Map();

  get(key) {
    const entry = this.#map.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiry !== undefined && entry.expiry <= Date.now()) {
      this.#map.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key, value, options) {
    const expiry = typeof options?.maxAge === "number" ? Date.now() + options.maxAge : undefined;
    this.#map.set(key, { value, expiry });
  }

  delete(key) {
    this.#map.delete(key);
  }
}
const store = new ExpiringMap();

// The resource server every client_credentials token is for (RFC 8707 resource indicator).
const RESOURCE = `${issuer}/bench-api`;
const RP = "bench-rp";

const provider = new Provider(issuer, {
  adapter: (model) => new MemoryAdapter(model, store),
  clients: [
    {
      client_id: "bench",
      client_secret: "bench-secret-123456",
      grant_types: ["client_credentials"],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: "client_secret_basic",
      scope: "read",
    },
    {
      client_id: RP,
      client_secret: "bench-rp-secret-123456",
      grant_types: ["authorization_code"],
      response_types: ["code"],
      redirect_uris: ["http://127.0.0.1:9/cb"],
      token_endpoint_auth_method: "client_secret_basic",
      id_token_signed_response_alg: "RS256",
      scope: "openid",
    },
  ],
  scopes: ["openid", "read"],
  jwks: {
    keys: [
      privateJwk("ec", { namedCurve: "P-256" }, "ES256", "bench-es256"),
      privateJwk("rsa", { modulusLength: 2048 }, "RS256", "bench-rs256"),
    ],
  },
  // First-party consent skip (oidc-provider's documented recipe): the bench RP's grant of
  // `openid` is created on the spot, so no consent prompt follows the login.
  loadExistingGrant: async (ctx) => {
    const grantId =
      ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    if (ctx.oidc.client.clientId !== RP) return undefined;
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid");
    await grant.save();
    return grant;
  },
  features: {
    clientCredentials: { enabled: true },
    // The development login form: any login name, no password check (see the header).
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Only client_credentials gets the resource server (a JWT); the code flow's access
      // token stays one the userinfo endpoint accepts.
      defaultResource: async (ctx) =>
        ctx.oidc.params?.grant_type === "client_credentials" ? RESOURCE : undefined,
      useGrantedResource: async () => false,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) throw new Provider.errors.InvalidTarget();
        return {
          scope: "read",
          audience: "bench",
          accessTokenTTL: 900,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "ES256" } },
        };
      },
    },
  },
  cookies: { keys: ["bench-cookie-key-not-secret"] },
});

const server = provider.listen(port, args.host, () => {
  console.log(`Serving ${issuer}`);
});

function stop() {
  server.close(() => process.exit(0));
  // Keep-alive connections from the load tool may hold close() open.
  setTimeout(() => process.exit(0), 500).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
