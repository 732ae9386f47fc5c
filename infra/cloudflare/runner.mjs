// Serves every edgeid Worker on one local origin, the way a zone with one route per function
// does on Cloudflare: one Miniflare (workerd) instance, one Worker per function, dispatched by
// path, sharing one D1 database and one KV namespace persisted under --state.
//
//   node_modules/.bin/node runner.mjs --host 127.0.0.1 --port 8787 --state DIR
//
// Each Worker's bindings, vars and compatibility date come from its wrangler.<function>.jsonc,
// so the least-privilege split is the one a deploy gets. Values come from the environment:
// EDGEID_<NAME> sets var or secret <NAME> (EDGEID_ISSUER, EDGEID_ADMIN_TOKEN,
// EDGEID_KEY_ENCRYPTION_KEY, ...) — only for the Workers whose config declares <NAME>.
// The D1 migrations are applied with `wrangler d1 migrations apply --local` before serving: the
// main database's (../migrations) and the credentials database's (../migrations/credentials,
// bound as CREDENTIALS by login and admin only). Prints `Serving http://ADDR` once ready;
// exits 0 on SIGTERM/SIGINT.

import { spawn } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { ROUTES } from "./routes.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));

// One Worker per function, with the paths routes.mjs gives it (shared with deploy.mjs).
// Miniflare routes need host `*` to match any Host header.
const FUNCTIONS = Object.entries(ROUTES).map(([name, paths]) => ({
  name,
  routes: paths.map((p) => `*${p}`),
}));

// Requests no route matches go to the first Worker: make it answer 404 as the core does for a
// path no function serves (`edgeid::web::not_found`).
const NOT_FOUND_WORKER = `export default {
  fetch() {
    return Response.json({ error: "not_found" }, { status: 404 });
  },
};`;

function fail(message) {
  console.error(`runner: ${message}`);
  process.exit(2);
}

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8787" },
    state: { type: "string" },
    verbose: { type: "boolean", default: false },
  },
});
if (!args.state) fail("--state DIR is required");
const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad --port ${args.port}`);
const stateDir = path.resolve(args.state);
mkdirSync(stateDir, { recursive: true });

// A requested stop disposes workerd and exits 0, whenever it comes.
let mf;
const migrations = new Set(); // the `wrangler d1 migrations apply` children while they run
let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  for (const child of migrations) child.kill("SIGTERM");
  try {
    await mf?.dispose();
  } catch (error) {
    console.error(`runner: dispose after ${signal}: ${error}`);
  }
  process.exit(0);
}
function handleSignals() {
  // Miniflare's exit hook answers SIGINT/SIGTERM with exit 130/143 and is installed by its
  // constructor: replace it. Its `exit` hook stays as a safety net.
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.removeAllListeners(signal);
    process.on(signal, () => stop(signal));
  }
}
handleSignals();

// wrangler and workerd, headless: no login, no telemetry, no prompts, no network. wrangler reads
// its log level when loaded, so it is imported only after this.
Object.assign(process.env, {
  CI: "true",
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_LOG: process.env.WRANGLER_LOG ?? (args.verbose ? "log" : "error"),
});

// workerd is Miniflare's child and outlives a runner killed with SIGKILL (holding the port).
// Where util-linux's setpriv exists, start it with a parent-death signal instead.
const require = createRequire(import.meta.url);
if (process.env.MINIFLARE_WORKERD_PATH === undefined && onPath("setpriv")) {
  const workerd = createRequire(require.resolve("miniflare"))("workerd");
  process.env.EDGEID_WORKERD_BIN = workerd.default ?? workerd;
  process.env.MINIFLARE_WORKERD_PATH = path.join(here, "workerd-with-parent.sh");
}

const configPath = (name) => path.join(here, `wrangler.${name}.jsonc`);

// The D1 databases, by binding. Every config that binds one binds it with the same
// database_id (and migrations_dir), so the Workers share it and any of them can migrate it.
const D1_BINDINGS = ["DB", "CREDENTIALS"];

/** The first function whose config binds D1 `binding`, if any. */
function configBinding(binding) {
  const pattern = new RegExp(`"binding"\\s*:\\s*"${binding}"`);
  return FUNCTIONS.map((fn) => fn.name).find((name) => pattern.test(readFileSync(configPath(name), "utf8")));
}

/**
 * Applies the migrations of every D1 database the Workers bind, locally. Idempotent. One at a
 * time: two `wrangler d1 migrations apply --local` on one --persist-to dir fail with SQLITE_BUSY.
 */
async function applyMigrations() {
  for (const binding of D1_BINDINGS) {
    const name = configBinding(binding);
    if (name !== undefined) await applyMigrationsOf(binding, name);
  }
}

/** `wrangler d1 migrations apply BINDING --local` with the config of function `name`. */
function applyMigrationsOf(binding, name) {
  const wranglerBin = path.join(path.dirname(require.resolve("wrangler/package.json")), "bin", "wrangler.js");
  const child = spawn(
    process.execPath,
    [wranglerBin, "d1", "migrations", "apply", binding, "--local", "--persist-to", stateDir,
      "-c", configPath(name)],
    { cwd: here, env: process.env, stdio: ["ignore", "pipe", "pipe"] },
  );
  migrations.add(child);
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  return new Promise((resolve) => {
    child.on("close", (code, signal) => {
      migrations.delete(child);
      if (stopping) return;
      if (code !== 0) {
        process.stderr.write(output);
        fail(`wrangler d1 migrations apply ${binding} failed (${code ?? signal})`);
      }
      if (args.verbose) process.stdout.write(output);
      resolve();
    });
  });
}

function onPath(program) {
  return (process.env.PATH ?? "").split(path.delimiter).some((dir) => {
    try {
      accessSync(path.join(dir, program), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The worker-build module and the wasm next to it (Miniflare 5 wants modules listed). */
function modulesOf(main) {
  if (!existsSync(main)) fail(`${main} is missing: build the Workers first (cargo xtask build)`);
  const dir = path.dirname(main);
  const modules = [{ type: "ESModule", path: main }];
  for (const file of readdirSync(dir)) {
    if (file.endsWith(".wasm")) modules.push({ type: "CompiledWasm", path: path.join(dir, file) });
  }
  return modules;
}

/** The config's vars, and its vars and secrets overridden by EDGEID_<NAME> where set. */
function bindingsFor(name, declared, secretNames) {
  const bindings = { ...declared };
  for (const key of new Set([...Object.keys(declared), ...secretNames])) {
    const value = process.env[`EDGEID_${key}`];
    if (value !== undefined) bindings[key] = value;
    else if (!(key in declared)) {
      console.error(`runner: warning: ${name} needs secret ${key}; EDGEID_${key} is not set`);
    }
  }
  return bindings;
}

function workerFor(wrangler, fn, defaultIssuer) {
  const file = configPath(fn.name);
  const { workerOptions, main } = wrangler.unstable_getMiniflareWorkerOptions(file);
  // wrangler's own module rules assume it bundles `main`; worker-build already did.
  const { modulesRules: _rules, bindings = {}, ...options } = workerOptions;
  const { rawConfig } = wrangler.experimental_readRawConfig({ config: file });
  const values = bindingsFor(fn.name, bindings, rawConfig.secrets?.required ?? []);
  if ("ISSUER" in values && process.env.EDGEID_ISSUER === undefined) values.ISSUER = defaultIssuer;
  const mainPath = path.resolve(here, main);
  return {
    ...options,
    name: `edgeid-${fn.name}`,
    // Module names are relative to modulesRoot and may not climb out of it.
    modulesRoot: path.dirname(mainPath),
    modules: modulesOf(mainPath),
    bindings: values,
    routes: fn.routes,
  };
}

// Loading wrangler takes seconds: do it while the migrations run.
const migrated = applyMigrations();
const { Log, LogLevel, Miniflare, convertV4MiniflareOptions } = await import("miniflare");
const wrangler = await import("wrangler");
const defaultIssuer = `http://${args.host.includes(":") ? `[${args.host}]` : args.host}:${port}`;
const workers = FUNCTIONS.map((fn) => workerFor(wrangler, fn, defaultIssuer));
await migrated;

mf = new Miniflare(
  convertV4MiniflareOptions({
    host: args.host,
    port,
    log: new Log(args.verbose ? LogLevel.DEBUG : LogLevel.INFO),
    logRequests: args.verbose,
    // The layout `wrangler d1 migrations apply --local --persist-to DIR` writes.
    resourcePersistencePath: path.join(stateDir, "v3"),
    workers: [
      {
        name: "edgeid-not-found",
        compatibilityDate: "2026-11-01",
        modules: [{ type: "ESModule", path: "not-found.mjs", contents: NOT_FOUND_WORKER }],
      },
      ...workers,
    ],
  }),
);
handleSignals();

try {
  const url = await mf.ready;
  console.log(`Serving ${url.origin}`);
} catch (error) {
  console.error(error);
  fail("workerd did not start");
}
