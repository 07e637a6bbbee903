/**
 * Renders the shipped `deploy/haproxy.cfg` and `deploy/nginx.conf` for other addresses: the listen line
 * and the instance lines are replaced, everything else is kept as shipped. The tests and the benchmark
 * run HAProxy and nginx from these renders, so the shipped files are what is tested.
 */
export interface DeployTargets {
  /** Where the balancer listens, `host:port`. */
  listen: string;
  /** The instances, `host:port` each. */
  backends: readonly string[];
}

function replaceInstanceLines(text: string, isInstance: RegExp, lines: string[]): string {
  const out: string[] = [];
  let inserted = false;
  for (const line of text.split("\n")) {
    if (!isInstance.test(line)) {
      out.push(line);
      continue;
    }
    if (!inserted) {
      const indent = /^\s*/.exec(line)![0];
      out.push(...lines.map((entry) => indent + entry));
      inserted = true;
    }
  }
  if (!inserted) throw new Error("the template has no instance lines to replace");
  return out.join("\n");
}

export function renderHaproxyConfig(template: string, targets: DeployTargets): string {
  const withBind = template.replace(/^(\s*bind )\S+/m, `$1${targets.listen}`);
  return replaceInstanceLines(
    withBind,
    /^\s*server \S+ \S+:\d+/,
    targets.backends.map((backend, index) => `server b${index + 1} ${backend}`),
  );
}

export function renderNginxConfig(template: string, targets: DeployTargets): string {
  const withListen = template.replace(/^(\s*listen )[^;]+;/m, `$1${targets.listen};`);
  const sample = /^\s*server \S+:\d+( [^;]*);/m.exec(template);
  const options = sample?.[1] ?? "";
  return replaceInstanceLines(
    withListen,
    /^\s*server \S+:\d+[^;]*;/,
    targets.backends.map((backend) => `server ${backend}${options};`),
  );
}
