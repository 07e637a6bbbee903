/**
 * The page a waiting buyer sees (GET /queue/{eventId}): plain server-rendered HTML, a style sheet and a
 * small script, no framework. The script joins the queue (or finds the place it kept in localStorage),
 * then polls GET /v1/events/{eventId}/queue when the answer's `pollAfterMs` says (at the admission time
 * once it is known, so that the buyer is in at once), and shows
 * position, people ahead and the estimated wait in a polite live region, so that a screen reader hears
 * the changes without being interrupted. Once admitted it keeps the access token for the storefront
 * (src/web/storefront/event.js reads it), says until when it is valid, and links back to the shop.
 *
 * Accessible: one h1, labelled figures (a description list), a live region, a progress element with a
 * text equivalent, visible focus, text at 4.5:1 contrast or more, no motion, readable at 320 px wide.
 */

/** Escapes text for HTML element content and attribute values. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export const WAITING_PAGE_SCRIPT_PATH = "/queue/assets/waiting-room.js";
export const WAITING_PAGE_STYLE_PATH = "/queue/assets/waiting-room.css";

/** The page's Content-Security-Policy: its own script and style only, talking to this origin only. */
export const WAITING_PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function waitingPageHtml(eventId: string, eventName: string): string {
  const id = escapeHtml(eventId);
  const name = escapeHtml(eventName);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Waiting room — ${name}</title>
<link rel="stylesheet" href="${WAITING_PAGE_STYLE_PATH}">
<script src="${WAITING_PAGE_SCRIPT_PATH}" defer></script>
</head>
<body>
<main id="room" data-event-id="${id}">
  <h1>You are in the queue for <span class="event">${name}</span></h1>
  <p>Keep this page open. It updates by itself; leaving and coming back keeps your place on this device.</p>
  <section aria-labelledby="status-heading">
    <h2 id="status-heading">Your place</h2>
    <p id="status" role="status" aria-live="polite" aria-atomic="true">Joining the queue…</p>
    <dl class="figures">
      <div><dt id="position-label">Position</dt><dd aria-labelledby="position-label" id="position">—</dd></div>
      <div><dt id="ahead-label">People ahead of you</dt><dd aria-labelledby="ahead-label" id="ahead">—</dd></div>
      <div><dt id="wait-label">Estimated wait</dt><dd aria-labelledby="wait-label" id="wait">—</dd></div>
    </dl>
    <label for="progress">Progress through the queue</label>
    <progress id="progress" max="100" value="0">0%</progress>
  </section>
  <section id="admitted" hidden aria-labelledby="admitted-heading">
    <h2 id="admitted-heading" tabindex="-1">It is your turn</h2>
    <p id="admitted-text"></p>
    <p><a id="shop" href="/events/${id}">Go to the ticket shop</a></p>
  </section>
  <p><button type="button" id="leave">Leave the queue</button></p>
  <noscript><p>This page needs JavaScript to keep your place up to date.</p></noscript>
</main>
</body>
</html>
`;
}

export const WAITING_PAGE_STYLE = `:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 1rem/1.5 system-ui, sans-serif; color: #1a1a1a; background: #ffffff; }
main { max-width: 40rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; line-height: 1.25; }
h2 { font-size: 1.15rem; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr)); gap: 0.75rem; margin: 1rem 0; }
.figures div { border: 1px solid #595959; border-radius: 0.5rem; padding: 0.75rem; }
dt { font-size: 0.875rem; color: #3d3d3d; }
dd { margin: 0; font-size: 1.5rem; font-weight: 700; }
progress { width: 100%; height: 1.25rem; }
#status { font-weight: 600; }
button { font: inherit; padding: 0.6rem 1rem; border: 2px solid #1a1a1a; border-radius: 0.4rem; background: #ffffff; color: #1a1a1a; min-height: 44px; }
a:focus-visible, button:focus-visible, [tabindex="-1"]:focus-visible { outline: 3px solid #0b57d0; outline-offset: 2px; }
#admitted { border: 2px solid #0a6b2e; border-radius: 0.5rem; padding: 0.75rem; color: #0a4d22; }
#admitted a { color: #0b3d91; font-weight: 700; }
@media (prefers-reduced-motion: reduce) { * { transition: none !important; animation: none !important; } }
`;

/** The page's script: plain ES2017 for every browser; the server's JSON is its only input. */
export const WAITING_PAGE_SCRIPT = `"use strict";
(function () {
  var main = document.getElementById("room");
  var eventId = main.getAttribute("data-event-id");
  var api = "/v1/events/" + encodeURIComponent(eventId) + "/queue";
  var queueKey = "boxoffice:queue:" + eventId;
  var accessKey = "boxoffice:access:" + eventId;
  var firstPosition = null;
  var timer = null;
  function $(id) { return document.getElementById(id); }
  function storedToken() { try { return localStorage.getItem(queueKey); } catch (e) { return null; } }
  function store(key, value) { try { localStorage.setItem(key, value); } catch (e) { /* private mode */ } }
  function forget(key) { try { localStorage.removeItem(key); } catch (e) { /* private mode */ } }
  function say(text) { if ($("status").textContent !== text) $("status").textContent = text; }
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 60) return "under a minute";
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) return "about " + minutes + (minutes === 1 ? " minute" : " minutes");
    var hours = Math.floor(minutes / 60);
    return "about " + hours + " h " + (minutes % 60) + " min";
  }
  function time(iso) { return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : ""; }
  function show(answer) {
    $("position").textContent = answer.position === null ? "—" : String(answer.position);
    $("ahead").textContent = answer.peopleAhead === null ? "—" : String(answer.peopleAhead);
    $("wait").textContent = duration(answer.estimatedWaitSeconds);
    if (answer.position !== null && (firstPosition === null || answer.position > firstPosition)) firstPosition = answer.position;
    var percent = firstPosition ? Math.round(100 * (firstPosition - (answer.position || 0)) / firstPosition) : 0;
    if (answer.state === "admitted" || answer.state === "session-ended") percent = 100;
    $("progress").value = percent;
    $("progress").textContent = percent + "%";
    if (answer.state === "pre-queue") {
      say("You are in the pre-queue. At " + time(answer.opensAt) + " everyone in it gets a random place: arriving early gives no advantage.");
    } else if (answer.state === "waiting") {
      say(answer.position === null ? "The queue is opening; your place is being drawn." : "You are number " + answer.position + " in the queue. Estimated wait: " + duration(answer.estimatedWaitSeconds) + ".");
    } else if (answer.state === "admitted") {
      if (answer.accessToken) store(accessKey, answer.accessToken);
      say("It is your turn. You may buy tickets until " + time(answer.sessionEndsAt) + ".");
      if ($("admitted").hidden) {
        $("admitted").hidden = false;
        $("admitted-text").textContent = "Your access is valid until " + time(answer.sessionEndsAt) + ". It is kept on this device for the ticket shop.";
        $("admitted-heading").focus();
      }
    } else if (answer.state === "session-ended") {
      forget(accessKey);
      say("Your shopping time has ended. Join the queue again to get a new place.");
    } else {
      say("You have left the queue.");
    }
  }
  function schedule(ms) { clearTimeout(timer); timer = setTimeout(poll, typeof ms === "number" && ms >= 0 ? ms : 5000); }
  function request(method, token) {
    var headers = { "accept": "application/json" };
    if (token) headers["queue-token"] = token;
    if (method === "POST") headers["content-type"] = "application/json";
    return fetch(api, { method: method, headers: headers, body: method === "POST" ? "{}" : undefined, credentials: "omit" });
  }
  function join() {
    return request("POST", storedToken()).then(function (response) {
      return response.json().then(function (answer) {
        if (!response.ok) { say(answer.detail || "The queue cannot be joined right now."); schedule(10000); return; }
        store(queueKey, answer.queueToken);
        show(answer);
        schedule(answer.pollAfterMs);
      });
    });
  }
  function poll() {
    var token = storedToken();
    if (!token) { join().catch(retry); return; }
    request("GET", token).then(function (response) {
      if (response.status === 403 || response.status === 404) { forget(queueKey); return join(); }
      if (response.status === 503) { say("Busy for a moment; your place is kept."); schedule(1000 * (Number(response.headers.get("retry-after")) || 5) * (0.5 + Math.random())); return; }
      return response.json().then(function (answer) { show(answer); schedule(answer.pollAfterMs); });
    }).catch(retry);
  }
  function retry() { say("Connection lost; trying again. Your place is kept."); schedule(5000); }
  $("leave").addEventListener("click", function () {
    var token = storedToken();
    clearTimeout(timer);
    if (!token) return;
    request("DELETE", token).then(function () { forget(queueKey); forget(accessKey); say("You have left the queue."); });
  });
  poll();
})();
`;
