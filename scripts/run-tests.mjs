// Runs every compiled test file (dist/test/**/*.test.js) with Node's own test runner.
// Before that it says which external services answer: on a developer's machine a suite whose
// service is missing is skipped with a clear reason; under CI=true a missing service fails the run.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import net from "node:net";

function findTests(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (name.endsWith(".test.js")) found.push(path);
  }
  return found.sort();
}

function answers(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

const services = [
  ["PostgreSQL", process.env.BOXOFFICE_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"],
  ["Redis", process.env.BOXOFFICE_TEST_REDIS_URL ?? "redis://127.0.0.1:6379"],
];
for (const [name, url] of services) {
  if (await answers(url)) console.log(`services: ${name} answers at ${url}`);
  else if (process.env.CI === "true") {
    console.error(`services: ${name} does not answer at ${url}; under CI=true that is a failure`);
    process.exit(1);
  } else console.log(`services: ${name} does not answer at ${url}: the suites that need it are SKIPPED`);
}

// The browser tests drive Debian's Chromium (test/support/storefront-site.ts).
const chromium = process.env.BOXOFFICE_TEST_CHROMIUM ?? "/usr/bin/chromium";
if (existsSync(chromium)) console.log(`services: Chromium is at ${chromium}`);
else if (process.env.CI === "true") {
  console.error(`services: Chromium is not at ${chromium}; under CI=true that is a failure`);
  process.exit(1);
} else console.log(`services: Chromium is not at ${chromium}: the browser suites are SKIPPED`);

const filter = process.argv.slice(2);
const files = findTests(join("dist", "test")).filter(
  (file) => filter.length === 0 || filter.some((part) => file.includes(part)),
);
if (files.length === 0) {
  console.error(`run-tests: no test file matches ${filter.join(", ")}`);
  process.exit(1);
}
const child = spawn(process.execPath, ["--test", "--test-reporter=spec", ...files], { stdio: "inherit" });
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
