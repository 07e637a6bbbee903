// Removes compiled files whose TypeScript source is gone (a test moved or deleted), before tsc builds.
// tsc never deletes outputs, and the test runner runs every dist/test/**/*.test.js: without this a moved
// test would run twice on a developer's machine, once from its old place. A clean clone has no dist/.
import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";

const COMPILED = /\.(js|js\.map|d\.ts)$/;

function prune(compiledDir, sourceDir) {
  if (!existsSync(compiledDir)) return;
  for (const name of readdirSync(compiledDir)) {
    const compiled = join(compiledDir, name);
    const source = join(sourceDir, name);
    if (statSync(compiled).isDirectory()) {
      prune(compiled, source);
      continue;
    }
    if (!COMPILED.test(name)) continue;
    // A browser module (src/web/**/*.js) is its own source, copied by copy-assets.mjs.
    if (!existsSync(source.replace(COMPILED, ".ts")) && !existsSync(source)) rmSync(compiled);
  }
}

for (const root of ["src", "test", "bench"]) prune(join("dist", root), root);
