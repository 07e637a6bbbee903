/**
 * Charts as SVG text, made here so that a report needs nothing from outside: a time axis (one point per
 * second), a value axis from 0 to a round number above the largest value, grid lines, one polyline (or
 * a set of bars) per series and a legend. A null value breaks a line (a second with no answers has no
 * latency, not a latency of 0). Every text is escaped.
 */

export interface ChartSeries {
  name: string;
  /** Any CSS colour. */
  color: string;
  /** One value per x; null for none. */
  values: readonly (number | null)[];
  /** "line" (the default) or "bars". */
  style?: "line" | "bars";
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  /** The x of each value, in order (seconds from the start). */
  x: readonly number[];
  series: readonly ChartSeries[];
  width?: number;
  height?: number;
}

/** Room around the plot: the title and, under it, the legend take the top. */
const MARGIN = { top: 58, right: 20, bottom: 44, left: 64 };

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/**
 * Round tick values from 0 up to at least `max`: steps of 1, 2 or 5 times a power of ten, about
 * `count` of them. `max` of 0 or less gives [0, 1].
 */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const rough = max / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const ticks: number[] = [];
  for (let value = 0; ticks.length === 0 || (ticks.at(-1) ?? 0) < max; value += step) {
    ticks.push(Number(value.toPrecision(12)));
  }
  return ticks;
}

function formatNumber(value: number): string {
  if (Math.abs(value) >= 10_000) return `${Number((value / 1000).toPrecision(3))}k`;
  return String(Number(value.toPrecision(4)));
}

/** The chart as a standalone SVG document (it can be inlined in HTML as is). */
export function svgChart(spec: ChartSpec): string {
  const width = spec.width ?? 760;
  const height = spec.height ?? 300;
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const plotHeight = height - MARGIN.top - MARGIN.bottom;
  const count = spec.x.length;
  let largest = 0;
  for (const series of spec.series) {
    for (const value of series.values)
      if (value !== null && Number.isFinite(value)) largest = Math.max(largest, value);
  }
  const ticks = niceTicks(largest);
  const top = ticks.at(-1) ?? 1;
  const step = count > 1 ? plotWidth / (count - 1) : plotWidth;
  const xAt = (i: number) => MARGIN.left + (count > 1 ? i * step : plotWidth / 2);
  const yAt = (value: number) => MARGIN.top + plotHeight - (value / top) * plotHeight;
  const px = (n: number) => n.toFixed(1);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(spec.title)}" font-family="system-ui, sans-serif" font-size="12">`,
    `<title>${escapeXml(spec.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${MARGIN.left}" y="22" font-size="15" font-weight="600" fill="#222">${escapeXml(spec.title)}</text>`,
  );
  // Value axis: grid lines and labels.
  for (const tick of ticks) {
    const y = px(yAt(tick));
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y}" y2="${y}" stroke="#e4e4e4"/>`,
      `<text x="${MARGIN.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#555">${formatNumber(tick)}</text>`,
    );
  }
  parts.push(
    `<text transform="translate(14 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle" fill="#555">${escapeXml(spec.yLabel)}</text>`,
  );
  // Time axis: about ten labels.
  const labelEvery = Math.max(1, Math.ceil(count / 10));
  for (let i = 0; i < count; i += labelEvery) {
    parts.push(
      `<text x="${px(xAt(i))}" y="${MARGIN.top + plotHeight + 16}" text-anchor="middle" fill="#555">${formatNumber(spec.x[i] ?? i)}</text>`,
    );
  }
  parts.push(
    `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${MARGIN.top + plotHeight}" y2="${MARGIN.top + plotHeight}" stroke="#888"/>`,
    `<text x="${MARGIN.left + plotWidth / 2}" y="${height - 8}" text-anchor="middle" fill="#555">${escapeXml(spec.xLabel)}</text>`,
  );
  // The series: bars first, so that lines stay visible above them.
  const bars = spec.series.filter((s) => s.style === "bars");
  const barWidth = Math.max(1, (count > 1 ? step : plotWidth) * 0.8) / Math.max(1, bars.length);
  bars.forEach((series, b) => {
    const rects = series.values
      .map((value, i) => {
        if (value === null || !(value > 0)) return "";
        const x = xAt(i) - (barWidth * bars.length) / 2 + b * barWidth;
        const y = yAt(value);
        return `<rect x="${px(x)}" y="${px(y)}" width="${px(barWidth)}" height="${px(MARGIN.top + plotHeight - y)}"/>`;
      })
      .join("");
    parts.push(
      `<g class="series" data-name="${escapeXml(series.name)}" fill="${escapeXml(series.color)}">${rects}</g>`,
    );
  });
  for (const series of spec.series.filter((s) => s.style !== "bars")) {
    const runs: string[][] = [[]];
    series.values.forEach((value, i) => {
      if (value === null || !Number.isFinite(value)) {
        if ((runs.at(-1) ?? []).length > 0) runs.push([]);
        return;
      }
      runs.at(-1)?.push(`${px(xAt(i))},${px(yAt(value))}`);
    });
    const lines = runs
      .filter((run) => run.length > 0)
      .map((run) =>
        run.length === 1
          ? `<circle cx="${run[0]?.split(",")[0]}" cy="${run[0]?.split(",")[1]}" r="2.5" fill="${escapeXml(series.color)}"/>`
          : `<polyline fill="none" stroke="${escapeXml(series.color)}" stroke-width="2" stroke-linejoin="round" points="${run.join(" ")}"/>`,
      )
      .join("");
    parts.push(`<g class="series" data-name="${escapeXml(series.name)}">${lines}</g>`);
  }
  // Legend: a row of its own under the title, right-aligned.
  let legendX = width - MARGIN.right;
  for (const series of [...spec.series].reverse()) {
    const label = escapeXml(series.name);
    const textWidth = series.name.length * 7 + 22;
    legendX -= textWidth;
    parts.push(
      `<rect x="${legendX}" y="30" width="12" height="12" fill="${escapeXml(series.color)}"/>`,
      `<text x="${legendX + 16}" y="40" fill="#333">${label}</text>`,
    );
  }
  parts.push("</svg>");
  return parts.join("\n");
}
