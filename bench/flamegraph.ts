/**
 * A dev tool: turns a V8 CPU profile (`node --cpu-prof` writes `*.cpuprofile`) into a flame graph as a
 * self-contained SVG (each box a function in its call stack, as wide as the share of samples spent in it
 * and what it called; hover for the name, the file and the share), and prints the functions that spent
 * the most samples themselves ("self") and in all (with what they called, "total").
 *
 *   node dist/bench/flamegraph.js <in.cpuprofile> <out.svg> [title]
 *
 * No dependency: the profile's call tree is summed per stack of function names (the "folded stacks" of
 * Brendan Gregg's flamegraph.pl), then laid out root at the bottom.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  /** µs between one sample and the one before it (the first: since the profile's start). */
  timeDeltas?: number[];
}

/** One box of the graph: a frame under its parent, with its samples (its own and its callees'). */
interface Frame {
  name: string;
  where: string;
  total: number;
  self: number;
  children: Map<string, Frame>;
}

const ROW_PX = 16;
const WIDTH_PX = 1200;
const FONT_PX = 11;

/** The name a frame shows: the function and, for code of ours or a package, the file it is in. */
function frameName(node: ProfileNode): { name: string; where: string } {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^file:\/\//, "");
  const short = file.includes("/node_modules/")
    ? file.slice(file.lastIndexOf("/node_modules/") + 14)
    : file.includes("/dist/")
      ? file.slice(file.lastIndexOf("/dist/") + 6)
      : basename(file);
  const name = functionName === "" ? "(anonymous)" : functionName;
  return { name: short ? `${name} ${short}` : name, where: file ? `${file}:${lineNumber + 1}` : "" };
}

/**
 * The profile's call tree merged per stack of names, with samples counted from `samples` or hitCount;
 * with `window`, only the samples taken between `fromMs` and `toMs` after the profile's start (to leave
 * a process's start and stop out of the picture).
 */
export function foldProfile(profile: CpuProfile, window?: { fromMs: number; toMs: number }): Frame {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const hits = new Map<number, number>();
  if (profile.samples && profile.samples.length > 0) {
    let atUs = 0;
    profile.samples.forEach((id, i) => {
      atUs += profile.timeDeltas?.[i] ?? 0;
      if (window && (atUs < window.fromMs * 1000 || atUs > window.toMs * 1000)) return;
      hits.set(id, (hits.get(id) ?? 0) + 1);
    });
  } else {
    for (const node of profile.nodes) hits.set(node.id, node.hitCount ?? 0);
  }
  const root: Frame = { name: "all", where: "", total: 0, self: 0, children: new Map() };
  const rootNode = profile.nodes[0];
  if (!rootNode) return root;
  const walk = (node: ProfileNode, into: Frame): number => {
    let total = hits.get(node.id) ?? 0;
    into.self += hits.get(node.id) ?? 0;
    for (const childId of node.children ?? []) {
      const child = byId.get(childId);
      if (!child) continue;
      const { name, where } = frameName(child);
      // (idle) is the event loop waiting: not CPU, left out of the picture.
      if (name.startsWith("(idle)")) continue;
      let frame = into.children.get(name);
      if (!frame) {
        frame = { name, where, total: 0, self: 0, children: new Map() };
        into.children.set(name, frame);
      }
      const spent = walk(child, frame);
      frame.total += spent;
      total += spent;
    }
    return total;
  };
  root.total = walk(rootNode, root);
  return root;
}

/** Warm colours for our code, blue for packages, grey for Node's and V8's own frames, green for GC. */
function colourOf(frame: Frame): string {
  const hash = [...frame.name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);
  const shade = hash % 40;
  if (frame.name.startsWith("(garbage collector)")) return `rgb(${80 + shade},${180 + shade},${80})`;
  if (frame.where.includes("/node_modules/")) return `rgb(${90 + shade},${140 + shade},${220})`;
  if (frame.where.includes("/dist/")) return `rgb(${225},${110 + shade * 2},${50 + shade})`;
  return `rgb(${170 + shade},${170 + shade},${170 + shade})`;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function renderFlameGraph(root: Frame, title: string): string {
  let depth = 0;
  const measure = (frame: Frame, level: number) => {
    depth = Math.max(depth, level);
    for (const child of frame.children.values()) measure(child, level + 1);
  };
  measure(root, 0);
  const height = (depth + 1) * ROW_PX + 40;
  const scale = root.total > 0 ? WIDTH_PX / root.total : 0;
  const boxes: string[] = [];
  const draw = (frame: Frame, x: number, level: number) => {
    const width = frame.total * scale;
    if (width < 0.8) return;
    const y = height - (level + 1) * ROW_PX;
    const share = root.total > 0 ? ((100 * frame.total) / root.total).toFixed(2) : "0";
    const label = `${frame.name} (${share}%, ${frame.total} samples)${frame.where ? ` ${frame.where}` : ""}`;
    const chars = Math.floor((width - 4) / (FONT_PX * 0.6));
    const text =
      chars >= 3 ? (frame.name.length <= chars ? frame.name : `${frame.name.slice(0, chars - 2)}..`) : "";
    boxes.push(
      `<g><title>${escapeXml(label)}</title><rect x="${x.toFixed(2)}" y="${y}" width="${width.toFixed(2)}" ` +
        `height="${ROW_PX - 1}" fill="${colourOf(frame)}" rx="2"/>` +
        (text ? `<text x="${(x + 3).toFixed(2)}" y="${y + ROW_PX - 4}">${escapeXml(text)}</text>` : "") +
        `</g>`,
    );
    let childX = x;
    const children = [...frame.children.values()].sort((a, b) => a.name.localeCompare(b.name));
    for (const child of children) {
      draw(child, childX, level + 1);
      childX += child.total * scale;
    }
  };
  draw(root, 0, 0);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH_PX}" height="${height}" ` +
      `viewBox="0 0 ${WIDTH_PX} ${height}" font-family="monospace" font-size="${FONT_PX}">`,
    `<rect width="100%" height="100%" fill="#fdfdf8"/>`,
    `<text x="${WIDTH_PX / 2}" y="18" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
    ...boxes,
    `</svg>`,
    "",
  ].join("\n");
}

/** The `limit` frames that spent the most samples themselves, and in all, summed over every stack. */
export function topFrames(
  root: Frame,
  limit: number,
): { self: [string, number][]; total: [string, number][] } {
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const walk = (frame: Frame, onStack: Set<string>) => {
    self.set(frame.name, (self.get(frame.name) ?? 0) + frame.self);
    // A recursive function counts once per stack.
    if (!onStack.has(frame.name)) total.set(frame.name, (total.get(frame.name) ?? 0) + frame.total);
    const next = new Set(onStack).add(frame.name);
    for (const child of frame.children.values()) walk(child, next);
  };
  for (const child of root.children.values()) walk(child, new Set());
  const top = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1]).slice(0, limit);
  return { self: top(self), total: top(total) };
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) {
  const [input, output, title] = process.argv.slice(2);
  if (!input || !output) {
    console.error("usage: node dist/bench/flamegraph.js <in.cpuprofile> <out.svg> [title]");
    process.exit(2);
  }
  const root = foldProfile(JSON.parse(readFileSync(input, "utf8")) as CpuProfile);
  writeFileSync(output, renderFlameGraph(root, title ?? basename(input)));
  const { self } = topFrames(root, 25);
  console.log(`${root.total} samples; most self time:`);
  for (const [name, count] of self) {
    console.log(`  ${((100 * count) / root.total).toFixed(1).padStart(5)}%  ${name}`);
  }
}
