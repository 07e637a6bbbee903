/** Opens and closes a SQLite store on a data directory (argv: <dir> <layout>); prints "ok". */
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";

const [dir, layout] = process.argv.slice(2);
if (!dir || (layout !== "single" && layout !== "per-event")) throw new Error("usage: <dir> <layout>");
const store = new SqliteStore({ kind: "sqlite", dir, layout, durability: "full", maxOpenEvents: 8 });
await store.init();
await store.close();
console.log("ok");
