// Copies the non-TypeScript files the code reads at run time (SQL migrations, Lua scripts, web pages and
// their browser scripts) from src/ into dist/src/, keeping their paths, so `dist` is self-contained.
import { cpSync, readdirSync, statSync, mkdirSync } from "node:fs";
import { join, dirname, extname } from "node:path";

// .js: the browser's own modules (src/web), served as they are; the TypeScript sources are tsc's.
const ASSET_EXTENSIONS = new Set([".sql", ".lua", ".html", ".css", ".svg", ".json", ".js"]);

function copyAssets(from, to) {
  for (const name of readdirSync(from)) {
    const source = join(from, name);
    const target = join(to, name);
    if (statSync(source).isDirectory()) copyAssets(source, target);
    else if (ASSET_EXTENSIONS.has(extname(name))) {
      mkdirSync(dirname(target), { recursive: true });
      cpSync(source, target);
    }
  }
}

copyAssets("src", join("dist", "src"));
