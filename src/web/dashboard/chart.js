/**
 * A small live line chart: an SVG drawn from the last points, and beside it a table of the latest ones,
 * the same figures as text for screen readers and for reading exact values. No library: a polyline, a
 * baseline and a scale line are all it needs. Values are set as text and attributes, never as markup.
 */
const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 300;
const HEIGHT = 100;
const KEEP_POINTS = 60;
const TABLE_ROWS = 5;

function svgElement(name, attributes) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

export class LineChart {
  /** `figure` holds a figcaption; the chart and its table are added after it. */
  constructor(figure, { unit, format }) {
    this.unit = unit;
    this.format = format;
    this.points = [];
    const caption = figure.querySelector("figcaption");
    this.name = caption ? caption.textContent : unit;
    this.svg = svgElement("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: "none" });
    this.svg.setAttribute("role", "img");
    this.title = svgElement("title", {});
    this.svg.append(this.title);
    this.svg.append(svgElement("line", { class: "axis", x1: 0, y1: HEIGHT - 1, x2: WIDTH, y2: HEIGHT - 1 }));
    this.line = svgElement("polyline", { class: "series", points: "" });
    this.svg.append(this.line);
    // The scale as text outside the drawing, which is stretched to the figure's width.
    this.maxLabel = document.createElement("p");
    this.maxLabel.className = "scale";
    figure.append(this.maxLabel, this.svg);
    const table = document.createElement("table");
    const tableCaption = document.createElement("caption");
    tableCaption.textContent = `${this.name}, latest first`;
    const head = document.createElement("thead");
    const headRow = document.createElement("tr");
    for (const text of ["Time", unit]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = text;
      headRow.append(th);
    }
    head.append(headRow);
    this.body = document.createElement("tbody");
    table.append(tableCaption, head, this.body);
    figure.append(table);
    this.#draw();
  }

  /** Adds a point (`value` null: no figure for that moment) and redraws. */
  push(at, value) {
    this.points.push({ at, value });
    if (this.points.length > KEEP_POINTS) this.points.shift();
    this.#draw();
  }

  /** Forgets every point (on sign-out: nothing shown stays in the page). */
  reset() {
    this.points = [];
    this.#draw();
  }

  #draw() {
    const known = this.points.filter((p) => p.value !== null);
    const max = Math.max(1, ...known.map((p) => p.value));
    const step = WIDTH / (KEEP_POINTS - 1);
    const offset = KEEP_POINTS - this.points.length;
    const coordinates = [];
    this.points.forEach((point, index) => {
      if (point.value === null) return;
      const x = (offset + index) * step;
      const y = HEIGHT - 2 - (point.value / max) * (HEIGHT - 16);
      coordinates.push(`${x.toFixed(1)},${y.toFixed(1)}`);
    });
    this.line.setAttribute("points", coordinates.join(" "));
    this.maxLabel.textContent = `max ${this.format(max)} ${this.unit}`;
    const last = known.at(-1);
    this.title.textContent = last
      ? `${this.name}: now ${this.format(last.value)}, highest shown ${this.format(max)}`
      : `${this.name}: no figures yet`;
    this.svg.setAttribute("aria-label", this.title.textContent);
    const rows = this.points.slice(-TABLE_ROWS).reverse();
    this.body.replaceChildren(
      ...rows.map((point) => {
        const row = document.createElement("tr");
        const time = document.createElement("td");
        time.textContent = point.at.toLocaleTimeString([], { hour12: false });
        const value = document.createElement("td");
        value.className = "number";
        value.textContent = point.value === null ? "—" : this.format(point.value);
        row.append(time, value);
        return row;
      }),
    );
  }
}
