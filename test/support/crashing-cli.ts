/**
 * A stand-in for the boxoffice CLI in the supervisor's crash test: `server` fails at once with a message
 * on stderr, every other command (the balancer) is the real one.
 */
if (process.argv[2] === "server") {
  console.error("boom: this instance cannot start (test)");
  process.exit(3);
}
await import("../../src/cli/main.js");
