/**
 * The operations dashboard. It talks to the cluster only through the balancer's address: the balancer's
 * admin calls (`/_lb/cluster`, the supervisor's view and controls; `/_lb/backends` when no supervisor is
 * attached) and the instances' admin API (`/v1/events…`), all with `Authorization: Bearer <admin token>`.
 * The token is asked for, kept in sessionStorage (this tab only), never put in a URL. Every figure from
 * the API is written as text (textContent), never as markup. Every action is confirmed first.
 */
import { LineChart } from "./chart.js";

const TOKEN_KEY = "boxoffice:admin-token";
const POLL_MS = 1000;
/** Events' reports are read every 2 polls for up to 25 events, less often for more (25 per 2 s at most). */
const EVENTS_PER_REFRESH = 25;
const MAX_EVENTS = 500;

const $ = (id) => document.getElementById(id);

let token = null;
let timer = null;
/** Polls until the events are read again. */
let eventsDue = 0;
/** The last balancer figures per backend, for requests per second without a supervisor. */
let lastBackends = null;
let clusterAttached = true;
/** When the last cluster view charted was made. */
let lastViewAt = null;

const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const whole = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const requestsChart = new LineChart($("requests-chart"), {
  unit: "requests/s",
  format: (v) => number.format(v),
});
const ticketsChart = new LineChart($("tickets-chart"), {
  unit: "tickets/s",
  format: (v) => number.format(v),
});

function say(text) {
  $("announce").textContent = text;
}

function readToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function keepToken(value) {
  try {
    if (value === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, value);
  } catch {
    // storage off: the token lives in this page only
  }
}

class Unauthorized extends Error {}
/** The answer came after a sign-out (or a sign-in with another token): nothing of it is shown. */
class SignedOut extends Error {}

/** One API call with the token; resolves to { status, body } (body parsed when JSON). */
async function call(method, path, body) {
  const used = token;
  if (used === null) throw new SignedOut();
  const headers = { accept: "application/json", authorization: `Bearer ${used}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const type = response.headers.get("content-type") || "";
  const parsed = type.includes("json") ? await response.json() : null;
  if (token !== used) throw new SignedOut();
  if (response.status === 401) throw new Unauthorized();
  return { status: response.status, body: parsed };
}

/** The problem's own words, or the status. */
function refusal(answer) {
  return answer.body && typeof answer.body.detail === "string"
    ? `${answer.body.detail} (${answer.status})`
    : `the server answered ${answer.status}`;
}

function milliseconds(value) {
  return value === null || value === undefined ? "—" : `${number.format(value)} ms`;
}

// ---- confirmation -------------------------------------------------------------------------------

/** Asks `question` in a modal dialog; resolves true when confirmed. */
function confirmAction(question, confirmLabel) {
  const dialog = $("confirm");
  $("confirm-text").textContent = question;
  $("confirm-ok").textContent = confirmLabel;
  return new Promise((resolve) => {
    const done = (answer) => {
      $("confirm-ok").removeEventListener("click", ok);
      $("confirm-cancel").removeEventListener("click", cancel);
      dialog.removeEventListener("cancel", cancel);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const ok = () => done(true);
    const cancel = (event) => {
      if (event) event.preventDefault();
      done(false);
    };
    $("confirm-ok").addEventListener("click", ok);
    $("confirm-cancel").addEventListener("click", cancel);
    dialog.addEventListener("cancel", cancel);
    dialog.showModal();
    $("confirm-cancel").focus();
  });
}

/** Runs a confirmed action and says how it went. */
async function act(question, confirmLabel, run, doneText) {
  if (!(await confirmAction(question, confirmLabel))) {
    say("Cancelled; nothing was sent.");
    return;
  }
  try {
    const answer = await run();
    if (answer.status >= 200 && answer.status < 300) say(doneText);
    else say(`Refused: ${refusal(answer)}`);
  } catch (error) {
    if (error instanceof SignedOut) return;
    if (error instanceof Unauthorized) return signOut("The admin token was refused; sign in again.");
    say("The cluster did not answer; try again.");
  }
  // Show the outcome at once, events included.
  eventsDue = 0;
  void refresh().catch(() => undefined);
}

// ---- tables -------------------------------------------------------------------------------------

/**
 * Brings a table body in line with `items`, keeping each row (and its button, and so the keyboard focus
 * on it) from one refresh to the next: rows are keyed by `key`, cells are updated as text in place.
 * `cells(item)` gives each cell's text and optional class; `button` makes a row's action button once,
 * `label(button, item)` updates it.
 */
function syncRows(tbody, items, { key, dataName, cells, button, label }) {
  const existing = new Map([...tbody.children].map((tr) => [tr.dataset[dataName], tr]));
  const rows = items.map((item) => {
    const id = key(item);
    let tr = existing.get(id);
    const values = cells(item);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset[dataName] = id;
      for (let index = 0; index < values.length; index++) tr.append(document.createElement("td"));
      const action = document.createElement("td");
      action.append(button(id));
      tr.append(action);
    }
    values.forEach(([text, className], index) => {
      const td = tr.children[index];
      if (td.textContent !== text) td.textContent = text;
      const wanted = className || "";
      if (td.className !== wanted) td.className = wanted;
    });
    label(tr.lastElementChild.firstElementChild, item);
    return tr;
  });
  const wanted = new Set(rows);
  for (const tr of [...tbody.children]) if (!wanted.has(tr)) tr.remove();
  rows.forEach((tr, index) => {
    if (tbody.children[index] !== tr) tbody.insertBefore(tr, tbody.children[index] || null);
  });
}

function shown(value, format = whole) {
  return value === null || value === undefined ? "—" : format.format(value);
}

function stateClass(state) {
  return `state-${String(state).replace(/[^a-z_]/g, "")}`;
}

// ---- instances ----------------------------------------------------------------------------------

/** The latest figures of each instance row, read by its Drain button when pressed. */
const instanceRows = new Map();

function drainButton(id) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Drain";
  button.setAttribute("aria-label", `Drain ${id}`);
  button.addEventListener("click", () => {
    const row = instanceRows.get(id);
    if (!row) return;
    const path = row.viaCluster
      ? `/_lb/cluster/instances/${encodeURIComponent(id)}/drain`
      : `/_lb/backends/${encodeURIComponent(id)}/drain`;
    const after = row.viaCluster
      ? "then stops; the cluster has one fewer until you scale up"
      : "then leaves the balancer";
    void act(
      `Drain ${id}? It takes no new requests, finishes those in flight, ${after}.`,
      `Drain ${id}`,
      () => call("POST", path),
      `${id} is draining.`,
    );
  });
  return button;
}

function showInstances(rows) {
  instanceRows.clear();
  for (const row of rows) instanceRows.set(row.id, row);
  syncRows($("instances").querySelector("tbody"), rows, {
    key: (r) => r.id,
    dataName: "instance",
    cells: (r) => [
      [r.id],
      [r.state, stateClass(r.state)],
      [shown(r.inFlight), "number"],
      [shown(r.requestsPerSecond, number), "number"],
      [milliseconds(r.p99Ms), "number"],
      [shown(r.restarts), "number"],
      [shown(r.lockWaitsPerSecond, number), "number"],
      [milliseconds(r.lockWaitP99Ms), "number"],
      [r.balancerState ?? "—", r.balancerState ? stateClass(r.balancerState) : ""],
    ],
    button: drainButton,
    label: (button, r) => {
      button.disabled = !(r.viaCluster ? r.state === "ready" : r.state === "up");
    },
  });
}

function showLog(list, entries) {
  list.replaceChildren(
    ...entries
      .slice(-15)
      .reverse()
      .map((entry) => {
        const li = document.createElement("li");
        li.textContent = entry;
        return li;
      }),
  );
}

function showCluster(view) {
  const rows = view.instances.map((i) => ({
    id: i.id,
    state: i.state,
    inFlight: i.backend ? i.backend.active : null,
    requestsPerSecond: i.figures.requestsPerSecond,
    p99Ms: i.figures.p99Ms,
    restarts: i.restarts,
    lockWaitsPerSecond: i.figures.lockWaitsPerSecond,
    lockWaitP99Ms: i.figures.lockWaitP99Ms,
    balancerState: i.backend ? i.backend.state : null,
    viaCluster: true,
  }));
  showInstances(rows);
  // A view shared with another poll (the supervisor keeps one for half a second) is one point.
  if (view.at !== lastViewAt) {
    lastViewAt = view.at;
    const at = new Date(view.at);
    requestsChart.push(at, view.totals.requestsPerSecond);
    ticketsChart.push(at, view.totals.ticketsPerSecond);
  }
  const serving = view.instances.filter((i) => i.state === "ready").length;
  const scale = $("scale-count");
  if (document.activeElement !== scale)
    scale.value = String(view.instances.filter((i) => i.state !== "draining").length);
  $("summary").textContent =
    `${serving} of ${view.instances.length} instances serving; ` +
    `${view.totals.requestsPerSecond === null ? "—" : number.format(view.totals.requestsPerSecond)} requests/s; ` +
    `${view.totals.ticketsPerSecond === null ? "—" : number.format(view.totals.ticketsPerSecond)} tickets sold/s.`;
  $("cluster-note").textContent = `Balancer ${view.balancer.state}; figures over the last ${
    view.windowSeconds === null ? "—" : number.format(view.windowSeconds)
  } s.`;
  const policy = view.autoscale;
  $("scaling-policy").textContent = policy
    ? `Autoscaling from ${policy.minInstances} to ${policy.maxInstances} instances, aiming at ${policy.targetInFlight} requests in flight per instance.`
    : "No autoscaling: the cluster keeps the number of instances it is given.";
  showLog(
    $("scaling-decisions"),
    view.scaleActions.map(
      (d) => `${new Date(d.at).toLocaleTimeString()}: ${d.action} from ${d.from} to ${d.to} (${d.reason})`,
    ),
  );
  if (view.scaleActions.length === 0) showLog($("scaling-decisions"), ["No scaling action yet."]);
  showLog(
    $("history"),
    view.history.map((h) => `${new Date(h.at).toLocaleTimeString()} ${h.subject}: ${h.what}`),
  );
}

/** Without a supervisor: the balancer's own list; rates from the change since the last poll. */
function showBackends(backends, atMs) {
  const before = lastBackends;
  lastBackends = { atMs, byId: new Map(backends.map((b) => [b.id, b.requests])) };
  const seconds = before ? (atMs - before.atMs) / 1000 : 0;
  let total = before ? 0 : null;
  const rows = backends.map((b) => {
    const previous = before ? before.byId.get(b.id) : undefined;
    const rate =
      previous !== undefined && seconds > 0 && b.requests >= previous
        ? (b.requests - previous) / seconds
        : null;
    if (rate !== null && total !== null) total += rate;
    return {
      id: b.id,
      state: b.state,
      inFlight: b.active,
      requestsPerSecond: rate,
      p99Ms: null,
      restarts: null,
      lockWaitsPerSecond: null,
      lockWaitP99Ms: null,
      balancerState: b.state,
      viaCluster: false,
    };
  });
  showInstances(rows);
  requestsChart.push(new Date(atMs), total);
  ticketsChart.push(new Date(atMs), null);
  $("summary").textContent =
    `${backends.filter((b) => b.state === "up").length} of ${backends.length} instances up.`;
  $("cluster-note").textContent =
    "No supervisor is attached to this balancer: restarts, p99, lock waits, scaling and history need `boxoffice up`.";
}

// ---- events -------------------------------------------------------------------------------------

function money(minorUnits, currency) {
  try {
    const format = new Intl.NumberFormat(undefined, { style: "currency", currency });
    const digits = format.resolvedOptions().maximumFractionDigits;
    return format.format(minorUnits / 10 ** digits);
  } catch {
    return `${whole.format(minorUnits)} ${currency}`;
  }
}

/** The latest report of each event row, read by its button when pressed. */
const eventRows = new Map();

function saleButton(eventId) {
  const button = document.createElement("button");
  button.type = "button";
  button.addEventListener("click", () => {
    const report = eventRows.get(eventId);
    if (!report) return;
    const pausing = report.state !== "paused";
    const verb = pausing ? "Pause" : "Resume";
    const question = pausing
      ? `Pause the sale of “${report.name}”? Purchases and new holds stop on every instance until you resume it.`
      : `Resume the sale of “${report.name}”?`;
    void act(
      question,
      `${verb} sale`,
      () => call("POST", `/v1/events/${encodeURIComponent(eventId)}/${pausing ? "pause" : "resume"}`),
      `The sale of “${report.name}” is ${pausing ? "paused" : "resumed"}.`,
    );
  });
  return button;
}

async function loadEvents() {
  // Every page of the list (oldest first), up to MAX_EVENTS.
  const events = [];
  let cursor = null;
  let more = false;
  do {
    const query = cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`;
    const page = await call("GET", `/v1/events?limit=100${query}`);
    if (page.status !== 200) return;
    events.push(...page.body.events);
    cursor = page.body.nextCursor;
    more = cursor !== null && events.length >= MAX_EVENTS;
  } while (cursor !== null && !more);
  eventsDue = 2 * Math.max(1, Math.ceil(events.length / EVENTS_PER_REFRESH));
  $("events-note").textContent = more
    ? `The oldest ${MAX_EVENTS} events are shown; read the others through the API.`
    : `${events.length} ${events.length === 1 ? "event" : "events"}.`;
  const rows = await Promise.all(
    events.slice(0, MAX_EVENTS).map(async (event) => {
      const path = `/v1/events/${encodeURIComponent(event.id)}`;
      const [report, room] = await Promise.all([
        call("GET", `${path}/report`),
        call("GET", `${path}/waiting-room`),
      ]);
      return {
        event,
        report: report.status === 200 ? report.body : null,
        room: room.status === 200 ? room.body : null,
      };
    }),
  );
  eventRows.clear();
  for (const row of rows) if (row.report) eventRows.set(row.event.id, row.report);
  syncRows($("events").querySelector("tbody"), rows, {
    key: (r) => r.event.id,
    dataName: "event",
    cells: ({ event, report, room }) => {
      const state = report ? report.state : event.state;
      return [
        [event.name],
        [state, stateClass(state)],
        [shown(report && report.sold), "number"],
        [shown(report && report.held), "number"],
        [shown(report && report.available), "number"],
        [report ? money(report.revenue, report.currency) : "—", "number"],
        [shown(room ? room.waiting : null), "number"],
        [shown(room ? room.admitted : null), "number"],
      ];
    },
    button: saleButton,
    label: (button, { event, report }) => {
      const pausing = !report || report.state !== "paused";
      const verb = pausing ? "Pause" : "Resume";
      if (button.textContent !== `${verb} sale`) button.textContent = `${verb} sale`;
      button.setAttribute("aria-label", `${verb} the sale of ${event.name}`);
      button.disabled = !report || (pausing && report.state !== "on_sale" && report.state !== "scheduled");
    },
  });
}

// ---- polling and sign-in ------------------------------------------------------------------------

async function refresh() {
  const atMs = Date.now();
  if (clusterAttached) {
    const view = await call("GET", "/_lb/cluster");
    if (view.status === 200) showCluster(view.body);
    else if (view.status === 404) clusterAttached = false;
    else $("cluster-note").textContent = `The cluster's figures are not available now: ${refusal(view)}.`;
  }
  if (!clusterAttached) {
    const backends = await call("GET", "/_lb/backends");
    if (backends.status === 200) showBackends(backends.body.backends, atMs);
  }
  $("scale-form").hidden = !clusterAttached;
  if (eventsDue-- <= 0) await loadEvents();
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(tick, POLL_MS);
}

async function tick() {
  try {
    await refresh();
  } catch (error) {
    if (error instanceof SignedOut) return;
    if (error instanceof Unauthorized) return signOut("The admin token was refused; sign in again.");
    $("cluster-note").textContent = "The cluster does not answer; trying again.";
  }
  if (token !== null) schedule();
}

function showBoard(visible) {
  $("board").hidden = !visible;
  $("login").hidden = visible;
  $("sign-out").hidden = !visible;
}

function signOut(message) {
  clearTimeout(timer);
  token = null;
  keepToken(null);
  showBoard(false);
  // Nothing of what was shown stays in the page.
  for (const id of ["instances", "events"]) $(id).querySelector("tbody").replaceChildren();
  for (const id of ["summary", "cluster-note", "scaling-policy", "events-note"]) $(id).textContent = "";
  for (const id of ["scaling-decisions", "history"]) $(id).replaceChildren();
  requestsChart.reset();
  ticketsChart.reset();
  lastViewAt = null;
  lastBackends = null;
  clusterAttached = true;
  $("login-error").textContent = message || "";
  $("token").focus();
}

/** Checks `candidate` with one admin call before showing anything. */
async function signIn(candidate) {
  token = candidate;
  try {
    let answer = await call("GET", "/_lb/cluster");
    clusterAttached = answer.status !== 404;
    if (!clusterAttached) answer = await call("GET", "/_lb/backends");
    if (answer.status !== 200) {
      token = null;
      $("login-error").textContent = `The cluster cannot be reached: ${refusal(answer)}.`;
      return;
    }
  } catch (error) {
    if (error instanceof SignedOut) return; // another sign-in began meanwhile
    token = null;
    $("login-error").textContent =
      error instanceof Unauthorized ? "This token was refused." : "The cluster cannot be reached; try again.";
    return;
  }
  keepToken(candidate);
  $("login-error").textContent = "";
  showBoard(true);
  $("summary-heading").setAttribute("tabindex", "-1");
  $("summary-heading").focus();
  eventsDue = 0;
  void tick();
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("token").value.trim();
  if (value === "") {
    $("login-error").textContent = "Enter the admin token.";
    return;
  }
  $("token").value = "";
  void signIn(value);
});

$("sign-out").addEventListener("click", () => signOut("Signed out."));

$("scale-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const count = Number($("scale-count").value);
  if (!Number.isInteger(count) || count < 1 || count > 256) {
    say("The number of instances must be a whole number from 1 to 256.");
    return;
  }
  void act(
    `Scale the cluster to ${count} instances? New ones start, or the newest are drained and stopped.`,
    `Scale to ${count}`,
    () => call("POST", "/_lb/cluster/scale", { instances: count }),
    `Scaling to ${count} instances.`,
  );
});

const kept = readToken();
if (kept) void signIn(kept);
else showBoard(false);
