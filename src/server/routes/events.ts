/**
 * Events: create one (admin), list them, read one with its counters, read its seat map.
 */
import { planEvent, type NewEventRequest } from "../../domain/event.js";
import { isEventId, newEventId } from "../../domain/ids.js";
import type { Store } from "../../store/store.js";
import { invalid, problem, tooLarge, unavailable } from "../problem-responses.js";
import { readById } from "../read-by-id.js";
import type { RouteSpec } from "../route-spec.js";
import {
  eventPageSchema,
  eventSchema,
  idParams,
  listEventsQuerySchema,
  newEventBodySchema,
  seatMapSchema,
} from "../schemas.js";

const DEFAULT_PAGE_SIZE = 20;

export interface EventRoutes {
  createEvent: RouteSpec;
  listEvents: RouteSpec;
  getEvent: RouteSpec;
  getSeatMap: RouteSpec;
}

export function eventRoutes(store: Store): EventRoutes {
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
      summary: "List events, oldest first, a page at a time",
      tag: "events",
      schema: { querystring: listEventsQuerySchema },
      responses: { 200: { description: "A page of events", schema: eventPageSchema }, 422: invalid },
      handler: async (request) => {
        const query = request.query as { limit?: string; cursor?: string };
        const limit = query.limit === undefined ? DEFAULT_PAGE_SIZE : Number(query.limit);
        return store.listEvents({ limit, cursor: query.cursor ?? null });
      },
    },
    getEvent: {
      method: "GET",
      url: "/v1/events/:eventId",
      operationId: "getEvent",
      summary: "One event with its counters, read at one instant",
      tag: "events",
      schema: { params: idParams("eventId") },
      responses: { 200: { description: "The event", schema: eventSchema }, 404: problem("event_not_found") },
      handler: readById("eventId", isEventId, (id) => store.getEvent(id), "event_not_found"),
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
      handler: readById("eventId", isEventId, (id) => store.getSeatMap(id), "event_not_found"),
    },
  };
}
