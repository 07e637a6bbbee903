/**
 * The sentence every benchmark result carries about the machine it ran on: the load average when the
 * scenario started and when it ended, so a reader can tell a quiet run from one that shared the cores.
 */
import os from "node:os";

const loadAtStart = os.loadavg()[0] ?? 0;

export function machineNote(): string {
  const cores = os.cpus().length;
  const now = os.loadavg()[0] ?? 0;
  return (
    `**Machine load:** 1-minute load average ${loadAtStart.toFixed(2)} when this scenario started and ` +
    `${now.toFixed(2)} at its end, on ${cores} cores. The figure includes the benchmark's own processes ` +
    `(and, at the start, the decaying load of the scenario before it); \`npm run bench\` runs the scenarios ` +
    `one after another on an otherwise idle machine. The load generator, the servers and the databases ` +
    `share these cores, so absolute numbers are low; compare rows of one run with each other.`
  );
}
