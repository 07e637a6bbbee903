/** The SVG chart maker: well-formed, scaled to round ticks, lines broken at gaps, every text escaped. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { escapeXml, niceTicks, svgChart } from "../../../src/rehearsal/svg-chart.js";

/** Checks that every tag opened is closed, in order (enough for the SVG we make: no comments, no CDATA). */
function assertBalanced(svg: string): void {
  const stack: string[] = [];
  for (const match of svg.matchAll(/<(\/?)([a-zA-Z]+)([^>]*?)(\/?)>/g)) {
    const [, closing, name, , selfClosing] = match;
    if (selfClosing) continue;
    if (closing) assert.equal(stack.pop(), name, `</${name}> closes the wrong tag`);
    else stack.push(name!);
  }
  assert.deepEqual(stack, []);
}

function points(polyline: string): [number, number][] {
  const list = /points="([^"]*)"/.exec(polyline)?.[1] ?? "";
  return list.split(" ").map((pair) => pair.split(",").map(Number) as [number, number]);
}

describe("svg chart", () => {
  it("round ticks from 0 to at least the largest value", () => {
    assert.deepEqual(niceTicks(9), [0, 2, 4, 6, 8, 10]);
    assert.deepEqual(niceTicks(100), [0, 20, 40, 60, 80, 100]);
    assert.deepEqual(niceTicks(1234), [0, 500, 1000, 1500]);
    assert.deepEqual(niceTicks(0.3), [0, 0.1, 0.2, 0.3]);
    assert.deepEqual(niceTicks(0), [0, 1]);
    assert.deepEqual(niceTicks(Number.NaN), [0, 1]);
  });

  it("a line per series, its points inside the plot, higher values drawn higher", () => {
    const svg = svgChart({
      title: "t",
      xLabel: "s",
      yLabel: "v",
      x: [0, 1, 2, 3],
      series: [{ name: "a", color: "#123456", values: [0, 10, 5, 20] }],
      width: 400,
      height: 200,
    });
    assertBalanced(svg);
    assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
    const lines = svg.match(/<polyline[^>]*>/g) ?? [];
    assert.equal(lines.length, 1);
    const p = points(lines[0]!);
    assert.equal(p.length, 4);
    for (const [x, y] of p) assert.ok(x >= 0 && x <= 400 && y >= 0 && y <= 200, `${x},${y}`);
    // y grows downwards in SVG: 20 is the top of the line, 0 its bottom.
    assert.ok(p[3]![1] < p[1]![1] && p[1]![1] < p[2]![1] && p[2]![1] < p[0]![1]);
    assert.ok(p.every(([x], i) => i === 0 || x > p[i - 1]![0]));
  });

  it("a null breaks the line: no latency is not a latency of 0", () => {
    const svg = svgChart({
      title: "t",
      xLabel: "s",
      yLabel: "ms",
      x: [0, 1, 2, 3, 4, 5],
      series: [{ name: "p99", color: "red", values: [5, 6, null, null, 7, 8] }],
    });
    const lines = svg.match(/<polyline[^>]*>/g) ?? [];
    assert.equal(lines.length, 2);
    assert.equal(points(lines[0]!).length, 2);
    assert.equal(points(lines[1]!).length, 2);
  });

  it("bars: one rect per value above 0", () => {
    const svg = svgChart({
      title: "t",
      xLabel: "s",
      yLabel: "n",
      x: [0, 1, 2],
      series: [{ name: "503", color: "orange", values: [3, 0, 1], style: "bars" }],
    });
    assertBalanced(svg);
    const group = /<g class="series" data-name="503"[^>]*>(.*?)<\/g>/s.exec(svg)?.[1] ?? "";
    assert.equal((group.match(/<rect /g) ?? []).length, 2);
  });

  it("escapes every text it is given", () => {
    const svg = svgChart({
      title: `<script>alert("x")</script> & co`,
      xLabel: "a<b",
      yLabel: "c>d",
      x: [0],
      series: [{ name: `"><img src=x onerror=1>`, color: `red" onload="x`, values: [1] }],
    });
    assertBalanced(svg);
    assert.ok(!svg.includes("<script>"));
    assert.ok(!svg.includes("<img"));
    assert.ok(!svg.includes(`onload="x`));
    assert.ok(svg.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co"));
    assert.equal(escapeXml(`'`), "&#39;");
  });

  it("an empty chart is still a well-formed chart", () => {
    const svg = svgChart({ title: "none", xLabel: "s", yLabel: "n", x: [], series: [] });
    assertBalanced(svg);
    assert.ok(!svg.includes("NaN"));
  });
});
