/**
 * Events: create one (admin), list them, read one with its counters, read its seat map.
 *
 * A draft is an admin's work in progress (an unannounced show, its prices): only a caller with the admin
 * token sees it. To anyone else it is not there — left out of the list, `404 event_not_found` when read —
 * as an id nobody created would be, so that a draft's existence is not told either.
 */
import { planEvent, type EventUpdate, type NewEventRequest } from "../../domain/event.js";
import { isEventId, newEventId } from "../../domain/ids.js";
import type { EventAction } from "../../domain/sale-window.js";
import type { AdminOutcome, Store } from "../../store/store.js";
import type { FastifyReply, FastifyRequest } from "fastify";
import { problemOf, problemOfRefusal, sendProblem } from "../problem.js";
import { invalid, problem, tooLarge, unavailable } from "../problem-responses.js";
import { readById } from "../read-by-id.js";
import type { RouteSpec } from "../route-spec.js";
import {
  emptyBodySchema,
  eventPageSchema,
  eventSchema,
  eventUpdateBodySchema,
  idParams,
  listEventsQuerySchema,
  newEventBodySchema,
  reportSchema,
  seatMapSchema,
} from "../schemas.js";

const DEFAULT_PAGE_SIZE = 20;

export interface EventRoutes {
  createEvent: RouteSpec;
  listEvents: RouteSpec;
  getEvent: RouteSpec;
  getSeatMap: RouteSpec;
  publishEvent: RouteSpec;
  pauseEvent: RouteSpec;
  resumeEvent: RouteSpec;
  closeEvent: RouteSpec;
  updateEvent: RouteSpec;
  getReport: RouteSpec;
}

const ACTION_SUMMARY: Record<EventAction, string> = {
  publish: "Publish a draft event: on sale at once, or scheduled until its salesStartAt",
  pause: "Pause the sale: every instance's next batch refuses purchases and holds (sale_paused)",
  resume: "Resume a paused sale",
  close: "Close the sale for good (sale_closed); holds can no longer be confirmed",
};

/** The answer to an admin change: the event after it, its refusal, or event_not_found. */
function sendAdminOutcome(reply: FastifyReply, outcome: AdminOutcome | null): FastifyReply {
  if (!outcome) return sendProblem(reply, problemOf("event_not_found", "no such event"));
  if (!outcome.ok) return sendProblem(reply, problemOfRefusal(outcome.refusal));
  return reply.code(200).send(outcome.event);
}

function actionRoute(store: Store, action: EventAction): RouteSpec {
  return {
    method: "POST",
    url: `/v1/events/:eventId/${action}`,
    operationId: `${action}Event`,
    summary: ACTION_SUMMARY[action],
    tag: "events",
    admin: true,
    schema: { params: idParams("eventId"), body: emptyBodySchema },
    responses: {
      200: { description: "The event after the change (a repeat changes nothing)", schema: eventSchema },
      401: problem("unauthorized"),
      404: problem("event_not_found"),
      409: problem("invalid_transition: the action does not apply in the event's status"),
      503: unavailable,
    },
    handler: async (request, reply) => {
      const { eventId } = request.params as { eventId: string };
      const outcome = isEventId(eventId) ? await store.changeEventStatus(eventId, action) : null;
      return sendAdminOutcome(reply, outcome);
    },
  };
}

/** Whether the request carries the admin token: only then are drafts shown. */
export type SeesDrafts = (request: FastifyRequest) => boolean;

const NO_SUCH_EVENT = () => problemOf("event_not_found", "no such event");

export function eventRoutes(store: Store, seesDrafts: SeesDrafts): EventRoutes {
  return {
    createEvent: {
      method: "POST",
      url: "/v1/events",
      operationId: "createEvent",
      summary: "Create an event: general admission (capacity) or reserved seating (seating)",
      tag: "events",
      admin: true,
      schema: { body: newEventBodySchema },
      responses: {
        201: { description: "The new event; Location names it", schema: eventSchema },
        401: problem("unauthorized"),
        413: tooLarge,
        422: invalid,
        503: unavailable,
      },
      handler: async (request, reply) => {
        const plan = planEvent(request.body as NewEventRequest, newEventId(), new Date());
        const event = await store.createEvent(plan);
        return reply.code(201).header("location", `/v1/events/${event.id}`).send(event);
      },
    },
    listEvents: {
      method: "GET",
      url: "/v1/events",
      operationId: "listEvents",
      summary: "List events, oldest first, a page at a time (drafts only with the admin token)",
      tag: "events",
      schema: { querystring: listEventsQuerySchema },
      responses: { 200: { description: "A page of events", schema: eventPageSchema }, 422: invalid },
      handler: async (request) => {
        const query = request.query as { limit?: string; cursor?: string };
        const limit = query.limit === undefined ? DEFAULT_PAGE_SIZE : Number(query.limit);
        const page = await store.listEvents({ limit, cursor: query.cursor ?? null });
        if (seesDrafts(request)) return page;
        // The cursor stays the store's, so a page may hold fewer than `limit` events (even none) and
        // still have a next one.
        return { ...page, events: page.events.filter((event) => event.state !== "draft") };
      },
    },
    getEvent: {
      method: "GET",
      url: "/v1/events/:eventId",
      operationId: "getEvent",
      summary: "One event with its counters, read at one instant (a draft only with the admin token)",
      tag: "events",
      schema: { params: idParams("eventId") },
      responses: { 200: { description: "The event", schema: eventSchema }, 404: problem("event_not_found") },
      handler: async (request, reply) => {
        const { eventId } = request.params as { eventId: string };
        const event = isEventId(eventId) ? await store.getEvent(eventId) : null;
        if (event === null || (event.state === "draft" && !seesDrafts(request))) {
          return sendProblem(reply, NO_SUCH_EVENT());
        }
        return event;
      },
    },
    getSeatMap: {
      method: "GET",
      url: "/v1/events/:eventId/seats",
      operationId: "getSeatMap",
      summary: "The seat map of a reserved-seating event (empty sections for general admission)",
      tag: "events",
      schema: { params: idParams("eventId") },
      responses: {
        200: { description: "Every seat and its status", schema: seatMapSchema },
        404: problem("event_not_found"),
      },
      handler: async (request, reply) => {
        const { eventId } = request.params as { eventId: string };
        if (!isEventId(eventId)) return sendProblem(reply, NO_SUCH_EVENT());
        if (!seesDrafts(request)) {
          const event = await store.getEvent(eventId);
          if (event === null || event.state === "draft") return sendProblem(reply, NO_SUCH_EVENT());
        }
        return (await store.getSeatMap(eventId)) ?? sendProblem(reply, NO_SUCH_EVENT());
      },
    },
    publishEvent: actionRoute(store, "publish"),
    pauseEvent: actionRoute(store, "pause"),
    resumeEvent: actionRoute(store, "resume"),
    closeEvent: actionRoute(store, "close"),
    updateEvent: {
      method: "PATCH",
      url: "/v1/events/:eventId",
      operationId: "updateEvent",
      summary: "Edit an event: name, description, sale window, limits, capacity (never below sold + held)",
      tag: "events",
      admin: true,
      schema: { params: idParams("eventId"), body: eventUpdateBodySchema },
      responses: {
        200: { description: "The event after the edit", schema: eventSchema },
        401: problem("unauthorized"),
        404: problem("event_not_found"),
        409: problem("capacity_below_taken: the capacity asked is below the tickets sold or held now"),
        413: tooLarge,
        422: invalid,
        503: unavailable,
      },
      handler: async (request, reply) => {
        const { eventId } = request.params as { eventId: string };
        const outcome = isEventId(eventId)
          ? await store.updateEvent(eventId, request.body as EventUpdate)
          : null;
        return sendAdminOutcome(reply, outcome);
      },
    },
    getReport: {
      method: "GET",
      url: "/v1/events/:eventId/report",
      operationId: "getEventReport",
      summary: "Sold, held, available and revenue, in all and by ticket type or price zone",
      tag: "events",
      admin: true,
      schema: { params: idParams("eventId") },
      responses: {
        200: { description: "The report, read at one instant", schema: reportSchema },
        401: problem("unauthorized"),
        404: problem("event_not_found"),
      },
      handler: readById("eventId", isEventId, (id) => store.getReport(id), "event_not_found"),
    },
  };
}
