// Deploys every edgeid Worker to your own Cloudflare account, on routes of the issuer's hostname.
//
//   node_modules/.bin/node deploy.mjs --issuer https://id.example.com [--zone example.com]
//                                     [--ids FILE] [--out DIR] [--keep-secrets] [--dry-run]
//
// (or `cargo xtask deploy cloudflare --issuer ...`, which also builds the Workers). DEPLOY.md is
// the step-by-step guide. What it does:
//
// 1. Reads every wrangler.<function>.jsonc here — whatever functions exist — and writes a
//    deploy-ready copy to DIR (default .deploy/): ISSUER set, one route per path in routes.mjs
//    on the issuer's hostname, workers.dev and preview URLs off, and the real D1 and KV ids in
//    place of the placeholders. The ids come from the environment — EDGEID_D1_<DATABASE>_ID
//    (EDGEID_D1_EDGEID_ID for `edgeid`), EDGEID_KV_ID for the `KV` binding
//    (EDGEID_KV_<BINDING>_ID for any other) — or from --ids FILE:
//    `{ "d1": { "edgeid": "<uuid>" }, "kv": { "KV": "<id>" } }`; the environment wins.
// 2. Applies the D1 migrations remotely, once per database: `wrangler d1 migrations apply`.
// 3. Deploys each Worker with `wrangler deploy`, uploading its required secrets with the same
//    version (`--secrets-file`: a Worker whose config requires secrets cannot be created
//    without them). Values come from EDGEID_SECRET_<NAME> and are never printed; wrangler reads
//    them from a file only the user can read, in a fresh directory under /dev/shm (memory) where
//    that exists, deleted as soon as the step ends. (Not a pipe: Node's child pipes are sockets,
//    which /dev/stdin cannot open.) --keep-secrets uploads none and keeps what the Workers have.
//    EDGEID_SECRET_* never reach wrangler's environment.
//
// With --dry-run nothing remote happens and no account is needed: each Worker is bundled with
// `wrangler deploy --dry-run --outdir DIR/<function>` and the remote commands are printed.
// Otherwise CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID must be set, and placeholder ids are
// refused. Exits 2 when it refuses (with every reason), 1 when a wrangler step fails.

import { spawnSync } from "node:child_process";
import {
  existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { domainToASCII, fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { ROUTES } from "./routes.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "..", "..");
const require = createRequire(import.meta.url);

const USAGE = `usage: node deploy.mjs --issuer https://HOST [--zone ZONE] [--ids FILE] [--out DIR]
                        [--keep-secrets] [--dry-run]`;

/** Refuses to go on: prints every reason and exits 2. */
function refuse(...reasons) {
  for (const reason of reasons.flat()) console.error(`deploy: ${reason}`);
  process.exit(2);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      issuer: { type: "string" },
      zone: { type: "string" },
      ids: { type: "string" },
      out: { type: "string" },
      "keep-secrets": { type: "boolean", default: false },
      "dry-run": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  }));
} catch (error) {
  refuse(error.message, USAGE);
}
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
const dryRun = args["dry-run"];

// A DNS name as Cloudflare zones and routes take it: ASCII (IDNs in punycode), lower case.
const LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
const HOSTNAME = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})+$`);

/**
 * The issuer as the core will publish it (OIDC Discovery 1.0 §3 `issuer`), and its host.
 * On Cloudflare every function is a route on one proxied hostname, so the issuer must be an
 * https origin with a DNS name: no path (the routes are at the root), no port, no IP address.
 */
function parseIssuer(raw) {
  if (!raw) refuse("--issuer is required: the https:// URL relying parties will use", USAGE);
  let url;
  try {
    url = new URL(raw);
  } catch {
    refuse(`--issuer ${JSON.stringify(raw)} is not a URL`);
  }
  const why = [];
  if (url.protocol !== "https:") {
    why.push("must be https:// (Cloudflare serves it over TLS; plain http is for local hosts)");
  }
  if (url.username || url.password) why.push("must not carry credentials");
  if (url.port) why.push("must use the default port: Worker routes carry no port");
  if (url.pathname !== "/" || url.search || url.hash || /[?#]/.test(raw)) {
    why.push("must be an origin with no path, query or fragment: the functions' routes start at /");
  }
  const host = url.hostname;
  if (/^\d+(\.\d+){3}$/.test(host) || host.startsWith("[")) {
    why.push("must name a host, not an IP address: routes live on a hostname in a zone");
  } else if (!HOSTNAME.test(host)) {
    why.push("must name a DNS host such as id.example.com");
  }
  if (why.length) refuse(why.map((w) => `--issuer ${raw} ${w}`));
  return { issuer: `https://${host}`, host };
}

/** The zone the routes are attached to: the host itself or one of its parent domains. */
function parseZone(raw, host) {
  if (raw === undefined) return undefined;
  const zone = domainToASCII(raw.trim());
  if (!HOSTNAME.test(zone)) refuse(`--zone ${JSON.stringify(raw)} is not a domain name`);
  if (host !== zone && !host.endsWith(`.${zone}`)) {
    refuse(`--zone ${zone} does not contain the issuer's host ${host}: routes must be in its zone`);
  }
  return zone;
}

const { issuer, host } = parseIssuer(args.issuer);
const zone = parseZone(args.zone, host);
const outDir = path.resolve(args.out ?? path.join(here, ".deploy"));

// wrangler headless: no prompts, no telemetry unless asked for. wrangler reads these when
// loaded, so it is imported only after this.
Object.assign(process.env, {
  CI: "true",
  WRANGLER_SEND_METRICS: process.env.WRANGLER_SEND_METRICS ?? "false",
  CLOUDFLARE_CF_FETCH_ENABLED: process.env.CLOUDFLARE_CF_FETCH_ENABLED ?? "false",
});
const wrangler = await import("wrangler");
const wranglerBin = path.join(
  path.dirname(require.resolve("wrangler/package.json")), "bin", "wrangler.js");

/** Every wrangler.<function>.jsonc here, parsed by wrangler's own JSONC reader. */
function readConfigs() {
  const configs = [];
  for (const file of readdirSync(here).sort()) {
    const match = /^wrangler\.([a-z0-9-]+)\.jsonc$/.exec(file);
    if (!match) continue;
    const source = path.join(here, file);
    let raw;
    try {
      ({ rawConfig: raw } = wrangler.experimental_readRawConfig({ config: source }));
    } catch (error) {
      refuse(`${file}: ${error.message}`);
    }
    configs.push({ name: match[1], file, source, raw });
  }
  if (configs.length === 0) refuse(`no wrangler.<function>.jsonc in ${here}`);
  return configs;
}

/** Checks what deploy.mjs relies on: routes for every config, no unknown path-valued keys. */
function checkConfigs(configs) {
  const problems = [];
  for (const { name, file, raw } of configs) {
    if (!Object.hasOwn(ROUTES, name)) {
      problems.push(`${file} has no paths in routes.mjs: add \`${name}: ["/path*"]\` there`);
    }
    if (typeof raw.main !== "string") problems.push(`${file} has no "main"`);
    else if (!existsSync(path.resolve(here, raw.main))) {
      problems.push(`${file}: ${raw.main} is missing: build the Workers first ` +
        "(`cargo xtask build --host cloudflare`)");
    }
    // Paths in these would need relocating into the out dir; no edgeid config uses them.
    for (const key of ["env", "assets", "site", "build", "tsconfig", "rules", "alias"]) {
      if (key in raw) problems.push(`${file}: deploy.mjs does not handle "${key}"`);
    }
  }
  for (const name of Object.keys(ROUTES)) {
    if (!configs.some((c) => c.name === name)) {
      problems.push(`routes.mjs has paths for ${name} but there is no wrangler.${name}.jsonc`);
    }
  }
  if (problems.length) refuse(problems);
}

const envName = (...parts) => parts.join("_").toUpperCase().replace(/[^A-Z0-9]+/g, "_");
const d1EnvName = (database) => `EDGEID_D1_${envName(database)}_ID`;
const kvEnvName = (binding) =>
  binding === "KV" ? "EDGEID_KV_ID" : `EDGEID_KV_${envName(binding)}_ID`;
const secretEnvName = (secret) => `EDGEID_SECRET_${secret}`;

// The configs in the repository carry ids that are all zeros but for a last digit or two.
const isPlaceholder = (id) => id.replace(/-/g, "").startsWith("000000000000");
const D1_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const KV_ID = /^[0-9a-f]{32}$/i;

/**
 * The distinct D1 databases (by database_name) and KV namespaces (by binding) the configs bind,
 * each with the id to deploy with and where that id came from.
 */
function resources(configs) {
  const problems = [];
  const d1 = new Map();
  const kv = new Map();
  const add = (map, key, entry, c, what) => {
    const seen = map.get(key);
    if (!seen) return map.set(key, { ...entry, functions: [c.name], config: c });
    if (seen.configuredId !== entry.configuredId) {
      problems.push(`${what} has id ${seen.configuredId} in ${seen.config.file} ` +
        `but ${entry.configuredId} in ${c.file}: use one id`);
    }
    if (seen.migrationsDir !== entry.migrationsDir) {
      problems.push(`${what} has different migrations_dir in ${seen.config.file} and ${c.file}`);
    }
    seen.functions.push(c.name);
  };
  for (const c of configs) {
    for (const db of c.raw.d1_databases ?? []) {
      if (!db.database_name) {
        problems.push(`${c.file}: D1 binding ${db.binding} has no database_name`);
        continue;
      }
      add(d1, db.database_name, {
        name: db.database_name,
        configuredId: db.database_id,
        // wrangler's default is `migrations` next to the config.
        migrationsDir: path.resolve(here, db.migrations_dir ?? "migrations"),
        envName: d1EnvName(db.database_name),
      }, c, `D1 database ${db.database_name}`);
    }
    for (const ns of c.raw.kv_namespaces ?? []) {
      add(kv, ns.binding, {
        name: ns.binding,
        configuredId: ns.id,
        envName: kvEnvName(ns.binding),
      }, c, `KV binding ${ns.binding}`);
    }
  }

  let file = {};
  if (args.ids) {
    try {
      file = JSON.parse(readFileSync(args.ids, "utf8"));
    } catch (error) {
      refuse(`--ids ${args.ids}: ${error.message}`);
    }
    for (const [section, map] of [["d1", d1], ["kv", kv]]) {
      for (const key of Object.keys(file[section] ?? {})) {
        if (!map.has(key)) problems.push(`--ids ${args.ids}: no config binds ${section} "${key}"`);
      }
    }
  }
  for (const [section, map, pattern, shape] of [
    ["d1", d1, D1_ID, "a UUID"],
    ["kv", kv, KV_ID, "32 hex digits"],
  ]) {
    for (const r of map.values()) {
      const fromEnv = process.env[r.envName];
      const fromFile = file[section]?.[r.name];
      r.id = fromEnv || fromFile || r.configuredId;
      r.source = fromEnv ? r.envName : fromFile ? `--ids ${args.ids}` : r.config.file;
      if (typeof r.id !== "string" || !pattern.test(r.id)) {
        problems.push(`${section === "d1" ? "D1 database" : "KV binding"} ${r.name}: ` +
          `id ${JSON.stringify(r.id)} from ${r.source} is not ${shape}`);
      }
      r.placeholder = typeof r.id === "string" && isPlaceholder(r.id);
    }
  }
  if (problems.length) refuse(problems);
  return { d1: [...d1.values()], kv: [...kv.values()] };
}

/**
 * A path the source config gives relative to itself, for a config in the out dir: relative
 * when the out dir is in the repository (the default), absolute otherwise.
 */
function relocate(fromSource) {
  const target = path.resolve(here, fromSource);
  if (path.relative(repoRoot, outDir).startsWith("..")) return target;
  return path.relative(outDir, target).split(path.sep).join("/");
}

/** The deploy-ready config of one function. */
function deployConfig(c, res) {
  const cfg = structuredClone(c.raw);
  if (typeof cfg.$schema === "string") cfg.$schema = relocate(cfg.$schema);
  cfg.main = relocate(cfg.main);
  for (const db of cfg.d1_databases ?? []) {
    const r = res.d1.find((d) => d.name === db.database_name);
    db.database_id = r.id;
    db.migrations_dir = relocate(db.migrations_dir ?? "migrations");
  }
  for (const ns of cfg.kv_namespaces ?? []) {
    ns.id = res.kv.find((k) => k.name === ns.binding).id;
  }
  // Only where declared, as runner.mjs does: a function gets no var it does not ask for.
  if (cfg.vars && "ISSUER" in cfg.vars) cfg.vars.ISSUER = issuer;
  cfg.routes = ROUTES[c.name].map((p) =>
    zone ? { pattern: `${host}${p}`, zone_name: zone } : `${host}${p}`,
  );
  // Reachable only on the issuer's hostname: no *.workers.dev URL, no preview URLs.
  cfg.workers_dev = false;
  cfg.preview_urls = false;
  return cfg;
}

/** The secrets a function's config requires, those set in EDGEID_SECRET_<NAME>, and the rest. */
function secretsOf(c) {
  const required = c.raw.secrets?.required ?? [];
  const values = {};
  const missing = [];
  for (const name of required) {
    const value = process.env[secretEnvName(name)];
    if (value) values[name] = value;
    else missing.push(name);
  }
  return { required, values, missing };
}

/** Format checks that catch a broken secret before a Worker is deployed with it. */
function checkSecretValues(values) {
  const problems = [];
  const kek = values.KEY_ENCRYPTION_KEY;
  // The core's `Kek::parse`: base64url of exactly 32 bytes, padding optional, canonical.
  const bare = kek?.trim().replace(/=+$/, "");
  if (kek !== undefined &&
    !(/^[A-Za-z0-9_-]{43}$/.test(bare) &&
      Buffer.from(bare, "base64url").toString("base64url") === bare)) {
    problems.push(`${secretEnvName("KEY_ENCRYPTION_KEY")} must be base64url of 32 random bytes ` +
      "(value not shown), e.g. from `openssl rand 32 | basenc --base64url`");
  }
  return problems;
}

const display = (p) => {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith("..") ? rel : p;
};

/** The environment wrangler runs in: none of our secrets, which it reads from a file instead. */
function wranglerEnv() {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith("EDGEID_SECRET_")) delete env[key];
  return env;
}

/**
 * Runs one wrangler command, its output on ours. `secrets` (an object) go to it as
 * `--secrets-file FILE`, in a private directory removed when the command ends.
 */
function runWrangler(argv, secrets) {
  const shown = `wrangler ${argv.map((a) => (path.isAbsolute(a) ? display(a) : a)).join(" ")}` +
    (secrets ? ` --secrets-file <${Object.keys(secrets).join(", ")}>` : "");
  console.log(`\n$ ${shown}`);
  let secretsDir;
  let result;
  try {
    const fileArgs = [];
    if (secrets) {
      const base = existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir();
      secretsDir = mkdtempSync(path.join(base, "edgeid-secrets-")); // mode 0700
      const file = path.join(secretsDir, "secrets.json");
      writeFileSync(file, JSON.stringify(secrets), { mode: 0o600 });
      fileArgs.push("--secrets-file", file);
    }
    result = spawnSync(process.execPath, [wranglerBin, ...argv, ...fileArgs], {
      cwd: here,
      env: wranglerEnv(),
      stdio: ["ignore", "inherit", "inherit"],
    });
  } finally {
    if (secretsDir) rmSync(secretsDir, { recursive: true, force: true });
  }
  if (result.error || result.status !== 0) {
    const why = result.error?.message ?? `exit ${result.status ?? result.signal}`;
    console.error(`deploy: \`${shown}\` failed (${why})`);
    console.error("deploy: every step is idempotent: fix the cause and run deploy.mjs again");
    process.exit(1);
  }
}

// --- plan -------------------------------------------------------------------------------

const configs = readConfigs();
checkConfigs(configs);
const res = resources(configs);
const functions = configs.map((c) => ({
  ...c,
  out: path.join(outDir, `wrangler.${c.name}.json`),
  deploy: deployConfig(c, res),
  secrets: secretsOf(c),
}));

// What a real deploy needs that is not there. A dry run reports it; a real deploy refuses.
const missing = [];
if (!process.env.CLOUDFLARE_API_TOKEN) {
  missing.push("CLOUDFLARE_API_TOKEN is not set: create an API token for your account " +
    "(DEPLOY.md lists its permissions) and export it; wrangler's login session is not used");
}
if (!process.env.CLOUDFLARE_ACCOUNT_ID) {
  missing.push("CLOUDFLARE_ACCOUNT_ID is not set: export your account id " +
    "(`wrangler whoami` prints it, as does the dashboard's Workers overview)");
}
for (const r of res.d1) {
  if (r.placeholder) {
    missing.push(`D1 database ${r.name} has the placeholder id: run ` +
      `\`wrangler d1 create ${r.name}\` and export ${r.envName}=<its database_id> ` +
      `(or put it in --ids FILE under "d1")`);
  }
}
for (const r of res.kv) {
  if (r.placeholder) {
    const title = r.name === "KV" ? "edgeid" : `edgeid-${r.name.toLowerCase()}`;
    missing.push(`KV binding ${r.name} has the placeholder id: run ` +
      `\`wrangler kv namespace create ${title}\` and export ${r.envName}=<its id> ` +
      `(or put it in --ids FILE under "kv")`);
  }
}
const allSecretValues = Object.assign({}, ...functions.map((f) => f.secrets.values));
if (!args["keep-secrets"]) {
  const unset = [...new Set(functions.flatMap((f) => f.secrets.missing))];
  for (const name of unset) {
    const users = functions.filter((f) => f.secrets.missing.includes(name)).map((f) => f.name);
    missing.push(`${secretEnvName(name)} is not set (secret ${name} of ${users.join(", ")}); ` +
      "or pass --keep-secrets to keep the values already on deployed Workers");
  }
}
const badSecrets = checkSecretValues(allSecretValues);
if (badSecrets.length) refuse(badSecrets);
if (!dryRun && missing.length) {
  refuse("refusing to deploy for real:", missing.map((m) => `  - ${m}`),
    "(--dry-run builds and checks everything without an account)");
}

mkdirSync(outDir, { recursive: true });
for (const f of functions) writeFileSync(f.out, `${JSON.stringify(f.deploy, null, 2)}\n`);

console.log(`edgeid on Cloudflare: issuer ${issuer}${zone ? `, zone ${zone}` : ""}`);
for (const f of functions) {
  const routes = f.deploy.routes.map((r) => (typeof r === "string" ? r : r.pattern));
  console.log(`  ${f.name.padEnd(10)} ${display(f.out)}  routes: ${routes.join(" ")}`);
}
for (const r of [...res.d1.map((d) => ["D1", d]), ...res.kv.map((k) => ["KV", k])]) {
  const [kind, { name, id, source, functions: users, placeholder }] = r;
  console.log(`  ${kind} ${name}: ${id}${placeholder ? " (placeholder)" : ""} from ${source}; ` +
    `bound by ${users.join(", ")}`);
}

// The remote steps: migrations before the code that needs them, then each Worker.
const steps = [
  ...res.d1.map((r) => ({
    argv: ["d1", "migrations", "apply", r.name, "--remote",
      "-c", path.join(outDir, `wrangler.${r.config.name}.json`)],
  })),
  ...functions.map((f) => {
    const upload = !args["keep-secrets"] && f.secrets.required.length > 0;
    return {
      argv: ["deploy", "-c", f.out],
      secrets: upload ? f.secrets.values : undefined,
      note: upload
        ? `--secrets-file <${f.secrets.required.map(secretEnvName).join(", ")}>`
        : undefined,
    };
  }),
];

if (dryRun) {
  for (const f of functions) {
    const bundle = path.join(outDir, f.name);
    rmSync(bundle, { recursive: true, force: true });
    // Secrets that are set go along, so the dry run reads them as the real upload would.
    const secrets = Object.keys(f.secrets.values).length ? f.secrets.values : undefined;
    runWrangler(["deploy", "--dry-run", "--outdir", bundle, "-c", f.out], secrets);
  }
  console.log("\nDry run: nothing was uploaded. A real deploy would run:");
  for (const step of steps) {
    const shown = step.argv.map((a) => (path.isAbsolute(a) ? display(a) : a)).join(" ");
    console.log(`  wrangler ${shown}${step.note ? ` ${step.note}` : ""}`);
  }
  if (missing.length) {
    console.log("and would refuse now:");
    for (const m of missing) console.log(`  - ${m}`);
  }
  process.exit(0);
}

for (const step of steps) runWrangler(step.argv, step.secrets);

console.log(`
Deployed. The issuer answers once ${host} is a proxied DNS record in its zone (DEPLOY.md).
On a first deploy, provision the signing keys (never generated on a request):
  export EDGEID_URL=${issuer} EDGEID_TOKEN=<the ADMIN_TOKEN secret>
  edgeid keys list      # empty on a new database
  edgeid keys rotate    # only then: publishes the first keys
  curl -fsS ${issuer}/.well-known/openid-configuration`);
