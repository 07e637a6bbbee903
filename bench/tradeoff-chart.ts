/**
 * Draws the two designs' trade-off as a picture: purchases per second for each layout × lock scope, one hot
 * event and 50 events, read from the table "The two designs' trade-off, measured" in docs/benchmarks/locks.md.
 * Writes docs/benchmarks/tradeoff.svg. Run by `npm run bench` after the scenarios.
 */
import { readFileSync, writeFileSync } from "node:fs";

interface Bar {
  group: string;
  label: string;
  value: number;
}

function readTradeoff(markdown: string): Bar[] {
  const start = markdown.indexOf("## The two designs' trade-off");
  if (start < 0) throw new Error("no trade-off table in locks.md");
  const bars: Bar[] = [];
  for (const line of markdown.slice(start).split("\n").slice(1)) {
    if (line.startsWith("## ")) break;
    const cells = line.split("|").map((c) => c.trim());
    // | lock | store | scope | events | purchases/s | ...
    const [, , store, scope, events, rate] = cells;
    if (!store || !scope || !events || !rate || !/^\d+$/.test(rate)) continue;
    bars.push({
      group: `${events === "1" ? "1 hot event" : `${events} events`}`,
      label: `${store}, ${scope} lock`,
      value: Number(rate),
    });
  }
  return bars;
}

function svg(bars: Bar[]): string {
  const groups = [...new Set(bars.map((b) => b.group))];
  const labels = [...new Set(bars.map((b) => b.label))];
  const colors = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759"];
  const max = Math.max(...bars.map((b) => b.value), 1);
  const barWidth = 36;
  const groupWidth = labels.length * barWidth + 60;
  const height = 320;
  const chartTop = 60;
  const chartBottom = height - 40;
  const width = Math.max(820, 80 + groups.length * groupWidth + 260);
  const y = (v: number) => chartBottom - ((chartBottom - chartTop) * v) / max;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="20" y="22" font-size="15" font-weight="bold">The two designs' trade-off: purchases per second</text>`,
    `<text x="20" y="40" fill="#555">one lock and one durable commit per purchase (file lock, SQLite, fsync at every commit), 4 processes</text>`,
    `<line x1="60" y1="${chartBottom}" x2="${60 + groups.length * groupWidth}" y2="${chartBottom}" stroke="#333"/>`,
  ];
  for (let tick = 0; tick <= 4; tick++) {
    const v = (max * tick) / 4;
    parts.push(`<text x="55" y="${y(v) + 4}" text-anchor="end" fill="#555">${Math.round(v)}</text>`);
    parts.push(
      `<line x1="60" y1="${y(v)}" x2="${60 + groups.length * groupWidth}" y2="${y(v)}" stroke="#eee"/>`,
    );
  }
  groups.forEach((group, g) => {
    const x0 = 80 + g * groupWidth;
    labels.forEach((label, l) => {
      const bar = bars.find((b) => b.group === group && b.label === label);
      if (!bar) return;
      const x = x0 + l * barWidth;
      parts.push(
        `<rect x="${x}" y="${y(bar.value)}" width="${barWidth - 6}" height="${chartBottom - y(bar.value)}" fill="${colors[l % colors.length]}"/>`,
      );
      parts.push(
        `<text x="${x + (barWidth - 6) / 2}" y="${y(bar.value) - 4}" text-anchor="middle" font-size="10">${bar.value}</text>`,
      );
    });
    parts.push(
      `<text x="${x0 + (labels.length * barWidth) / 2}" y="${chartBottom + 18}" text-anchor="middle">${group}</text>`,
    );
  });
  const legendX = 80 + groups.length * groupWidth + 10;
  labels.forEach((label, l) => {
    parts.push(
      `<rect x="${legendX}" y="${chartTop + l * 22}" width="14" height="14" fill="${colors[l % colors.length]}"/>`,
    );
    parts.push(`<text x="${legendX + 20}" y="${chartTop + l * 22 + 11}">${label}</text>`);
  });
  parts.push("</svg>");
  return parts.join("\n");
}

const locks = readFileSync("docs/benchmarks/locks.md", "utf8");
writeFileSync("docs/benchmarks/tradeoff.svg", `${svg(readTradeoff(locks))}\n`);
console.log("wrote docs/benchmarks/tradeoff.svg");
