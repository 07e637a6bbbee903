/**
 * The waiting page (waiting-room/waiting-page.ts), served by every instance: GET /queue/{eventId} and its
 * script and style sheet. HTML, not part of the JSON API, so not in /openapi.json.
 */
import type { FastifyInstance } from "fastify";
import { isEventId } from "../../domain/ids.js";
import type { Store } from "../../store/store.js";
import {
  WAITING_PAGE_CSP,
  WAITING_PAGE_SCRIPT,
  WAITING_PAGE_SCRIPT_PATH,
  WAITING_PAGE_STYLE,
  WAITING_PAGE_STYLE_PATH,
  waitingPageHtml,
} from "../../waiting-room/waiting-page.js";
import { problemOf, sendProblem } from "../problem.js";

export function registerWaitingPage(app: FastifyInstance, store: Store): void {
  app.get("/queue/:eventId", async (request, reply) => {
    const { eventId } = request.params as { eventId: string };
    const event = isEventId(eventId) ? await store.getEvent(eventId) : null;
    if (!event || !(await store.waitingRoom.room(eventId))) {
      return sendProblem(reply, problemOf("waiting_room_not_found", "this event has no waiting room"));
    }
    return reply
      .type("text/html; charset=utf-8")
      .header("content-security-policy", WAITING_PAGE_CSP)
      .header("cache-control", "no-store")
      .header("x-content-type-options", "nosniff")
      .header("referrer-policy", "no-referrer")
      .send(waitingPageHtml(event.id, event.name));
  });
  app.get(WAITING_PAGE_SCRIPT_PATH, async (_request, reply) =>
    reply
      .type("text/javascript; charset=utf-8")
      .header("cache-control", "public, max-age=300")
      .send(WAITING_PAGE_SCRIPT),
  );
  app.get(WAITING_PAGE_STYLE_PATH, async (_request, reply) =>
    reply
      .type("text/css; charset=utf-8")
      .header("cache-control", "public, max-age=300")
      .send(WAITING_PAGE_STYLE),
  );
}
