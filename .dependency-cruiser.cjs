// The direction of every dependency inside src/, checked by `npm run lint` (dependency-cruiser).
// docs/architecture.md ("Layers") draws the same picture. Type-only imports count: a type is a
// dependency of the design even when the compiler erases it.

/**
 * Each folder of src/ and the folders it may import besides itself. Top to bottom:
 *   cli → cluster | balancer | server | rehearsal → sales | webhooks | waiting-room → store | lock → domain,
 * with config (the typed settings) under the commands' components and above store/lock, whose config
 * types it reads, and log (the logger factory) beside domain at the bottom, for any layer.
 * Folders not written yet (waiting-room, web) have their place already.
 */
const LAYERS = {
  // The composition root: builds every process from its parts; nothing imports it.
  cli: ["cluster", "balancer", "server", "rehearsal", "config", "log", "domain"],
  // The supervisor of `boxoffice up`: speaks to the balancer and the instances over HTTP and processes only.
  cluster: ["http", "config", "log", "domain"],
  // The load balancer: knows no instance's code, only HTTP; it may serve the dashboard and hold the queue.
  balancer: ["web", "waiting-room", "http", "telemetry", "config", "log", "domain"],
  // One instance's HTTP API.
  server: [
    "web",
    "sales",
    "webhooks",
    "waiting-room",
    "store",
    "lock",
    "http",
    "telemetry",
    "config",
    "log",
    "domain",
  ],
  // The on-sale surge generator, verifier and report: drives a running system through its HTTP API only
  // (never store/, lock/ or server/: what it checks, it reads as any client would).
  rehearsal: ["config", "log", "domain"],
  // Storefront and dashboard pages: they call only the HTTP API.
  web: ["domain"],
  // The batched sell path and the hold sweeper.
  sales: ["store", "lock", "log", "domain"],
  // The outbox relay, signer and delivery: reads each store's outbox.
  webhooks: ["store", "log", "domain"],
  // Queue positions and signed passes, with backends of its own.
  "waiting-room": ["store", "lock", "log", "domain"],
  // Typed, frozen settings: reads the config types and setting parsers of store and lock.
  config: ["store", "lock", "log", "domain"],
  // What store and lock share lives in domain, never in one of them.
  store: ["sqlite", "postgres", "log", "domain"],
  lock: ["sqlite", "postgres", "log", "domain"],
  // What a store and a lock on the same database share (the better-sqlite3 WAL opener; the advisory
  // lock key): named after the database, importing nothing of boxoffice.
  sqlite: [],
  postgres: [],
  // What every HTTP surface (instance, balancer, control server) shares: one problem+json writer and one
  // constant-time admin token check. Imports nothing of boxoffice.
  http: [],
  // Optional OpenTelemetry traces (loaded only when asked for), for the instance and the balancer.
  // Imports nothing of boxoffice; the sell path reports its phases through an interface of its own.
  telemetry: [],
  // The logger factory: pino only.
  log: [],
  // Types, rules, the one decider and the errors: no I/O, no import of any other folder.
  domain: [],
};

const FOLDERS = Object.keys(LAYERS);
const alternatives = (names) => names.map((name) => name.replace("-", "\\-")).join("|");

const layerRules = FOLDERS.map((folder) => ({
  name: `layer-${folder}`,
  severity: "error",
  comment:
    `src/${folder}/ imports only ` +
    (LAYERS[folder].length === 0 ? "itself" : LAYERS[folder].map((name) => `${name}/`).join(", ")) +
    ' (LAYERS in .dependency-cruiser.cjs; docs/architecture.md, "Layers")',
  from: { path: `^src/${folder}/` },
  to: { path: "^src/", pathNot: `^src/(${alternatives([folder, ...LAYERS[folder]])})/` },
}));

const rules = [
  {
    name: "no-circular",
    severity: "error",
    comment:
      "No import cycle between files anywhere in src/: a cycle makes modules that cannot be read apart.",
    from: { path: "^src/" },
    to: { circular: true },
  },
  {
    name: "folder-has-a-layer",
    severity: "error",
    comment:
      "Every folder of src/ has its place in LAYERS (.dependency-cruiser.cjs); a new folder goes there first.",
    from: { path: "^src/", pathNot: `^src/(${alternatives(FOLDERS)})/` },
    to: {},
  },
  ...layerRules,
  {
    name: "backends-through-factories",
    severity: "error",
    comment:
      "Outside store/ and lock/, code knows a backend only through the factories (store/create-store.ts, " +
      "lock/create-lock-provider.ts) and the interfaces, never a backend's folder.",
    from: { path: "^src/", pathNot: "^src/(store|lock)/" },
    to: { path: "^src/(store|lock)/[^/]+/" },
  },
  {
    name: "backends-apart",
    severity: "error",
    comment:
      "A backend's folder imports no other backend's folder: what two share lives in store/ or lock/ " +
      "above them, or in domain/.",
    from: { path: "^src/(store|lock)/([^/]+)/" },
    to: { path: "^src/(store|lock)/[^/]+/", pathNot: "^src/$1/$2/" },
  },
  {
    name: "heavy-clients-load-lazily",
    severity: "error",
    comment:
      "pg and ioredis are imported only inside the backends that use them, which the factories load with " +
      "import(), so that the embedded default never loads them.",
    from: { path: "^src/", pathNot: "^src/(store/postgres|lock/postgres|lock/redis)/" },
    to: { path: "node_modules/(pg|ioredis)/", dependencyTypesNot: ["type-only"] },
  },
  {
    name: "factories-load-backends-lazily",
    severity: "error",
    comment: "The factories load the backends that need a heavy client with import(), never statically.",
    from: { path: "^src/(store|lock)/[^/]+\\.ts$" },
    to: {
      path: "^src/(store/postgres|lock/postgres|lock/redis)/",
      dependencyTypesNot: ["dynamic-import", "type-only"],
    },
  },
  {
    name: "not-to-dev-dep",
    severity: "error",
    comment: "src/ runs in production, where devDependencies are not installed.",
    from: { path: "^src/" },
    to: { dependencyTypes: ["npm-dev"], dependencyTypesNot: ["type-only"] },
  },
  {
    name: "not-to-unresolvable",
    severity: "error",
    comment: "An import that resolves to no file.",
    from: { path: "^src/" },
    to: { couldNotResolve: true },
  },
];

module.exports = {
  forbidden: rules,
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
  },
};
