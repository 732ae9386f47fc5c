// The peer `cargo xtask bench` measures edgeid against: the npm package `oidc-provider`,
// configured the way edgeid is for the benchmarked paths.
//
//   node peer.mjs --port 8790 [--host 127.0.0.1]
//
// - issuer = the listen URL; discovery at /.well-known/openid-configuration, JWKS where its
//   `jwks_uri` says, token endpoint where its `token_endpoint` says;
// - one client `bench` (secret `bench-secret-123456`, `client_secret_basic`) allowed only
//   `client_credentials` with scope `read`;
// - access tokens are RFC 9068 JWTs (`typ: at+jwt`) signed ES256, 900 s, as edgeid issues them:
//   oidc-provider does JWT access tokens through a Resource Server (`resourceIndicators`) whose
//   `accessTokenFormat` is `jwt`, so every token request defaults to one;
// - the JWKS publishes one ES256 and one RS256 key, like edgeid after its key provisioning;
// - storage: oidc-provider's in-memory adapter (JWT access tokens are not stored).
// Prints `Serving http://HOST:PORT` once listening; exits 0 on SIGTERM/SIGINT.

import { generateKeyPairSync } from "node:crypto";
import { parseArgs } from "node:util";

import Provider from "oidc-provider";

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

// The resource server every client_credentials token is for (RFC 8707 resource indicator).
const RESOURCE = `${issuer}/bench-api`;

const provider = new Provider(issuer, {
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
  ],
  scopes: ["openid", "read"],
  jwks: {
    keys: [
      privateJwk("ec", { namedCurve: "P-256" }, "ES256", "bench-es256"),
      privateJwk("rsa", { modulusLength: 2048 }, "RS256", "bench-rs256"),
    ],
  },
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
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
  // Not used by client_credentials; set so the provider does not warn about defaults.
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
