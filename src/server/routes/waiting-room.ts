/**
 * The waiting room: the admin sets one up per event (PUT/GET/DELETE …/waiting-room); buyers join the
 * queue (POST …/queue), read their place (GET …/queue, a cheap poll: the signature check and one indexed
 * read, no lock) and leave (DELETE …/queue). Once admitted, the poll answers an access token that orders
 * and holds of the event need (hooks/access-token-check.ts).
 */
import { randomBytes } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { isEventId } from "../../domain/ids.js";
import type { Store } from "../../store/store.js";
import type { Place, Room } from "../../store/waiting-room-store.js";
import type { CollectionLog } from "../../waiting-room/collection-log.js";
import { JoinBatcher } from "../../waiting-room/join-batcher.js";
import { openingOf } from "../../waiting-room/opening.js";
import type { PassSigner } from "../../waiting-room/pass-signer.js";
import { hasAccess, queueStatusOf } from "../../waiting-room/queue-status.js";
import { randomRank } from "../../waiting-room/random-rank.js";
import type { RoomDirectory } from "../../waiting-room/room-directory.js";
import { buyerIdentityOf } from "../buyer-identity.js";
import { problemOf, sendProblem } from "../problem.js";
import { invalid, problem, unavailable } from "../problem-responses.js";
import type { RouteSpec } from "../route-spec.js";
import {
  emptyBodySchema,
  idParams,
  queueStatusSchema,
  queueTokenHeadersSchema,
  ROOM_LIMITS,
  waitingRoomBodySchema,
  waitingRoomSchema,
} from "../schemas.js";

export interface WaitingRoomRoutes {
  putRoom: RouteSpec;
  getRoom: RouteSpec;
  deleteRoom: RouteSpec;
  joinQueue: RouteSpec;
  getQueuePlace: RouteSpec;
  leaveQueue: RouteSpec;
}

export interface WaitingRoomRouteDeps {
  store: Store;
  signer: PassSigner;
  directory: RoomDirectory;
  collections: CollectionLog;
  /** One admission pass now (the instance's AdmissionTicker.passNow), for joins within the look-ahead. */
  admitNow?: () => Promise<void>;
}

interface RoomBody {
  admissionRatePerSecond?: number;
  maxActiveShoppers?: number;
  sessionSeconds?: number;
  opensAt?: string;
  preQueueOpensAt?: string;
}

/** What the admin reads of a room. */
function roomView(room: Room, nowMs: number) {
  const joined = room.preQueueCount + room.laterCount;
  return {
    eventId: room.eventId,
    admissionRatePerSecond: room.admissionRatePerSecond,
    maxActiveShoppers: room.maxActiveShoppers,
    sessionSeconds: room.sessionSeconds,
    opensAt: new Date(room.opensAtMs).toISOString(),
    preQueueOpensAt: new Date(room.preQueueOpensAtMs).toISOString(),
    state:
      nowMs < room.preQueueOpensAtMs
        ? "scheduled"
        : nowMs < room.opensAtMs && !room.drawn
          ? "pre-queue"
          : "open",
    preQueue: room.preQueueCount,
    joined,
    admitted: room.admittedThrough,
    waiting: joined - room.admittedThrough,
  };
}

export function waitingRoomRoutes(deps: WaitingRoomRouteDeps): WaitingRoomRoutes {
  const rooms = deps.store.waitingRoom;
  const joins = new JoinBatcher(rooms, randomRank, deps.admitNow ?? null);
  const eventIdOf = (request: FastifyRequest): string | null => {
    const { eventId } = request.params as { eventId: string };
    return isEventId(eventId) ? eventId : null;
  };
  const noRoom = (reply: FastifyReply) =>
    sendProblem(reply, problemOf("waiting_room_not_found", "this event has no waiting room"));

  /**
   * A buyer's answer: the status, and the access token once the admission time is known, valid from it
   * (queue-status.ts; collected once, for the figures).
   */
  const placeAnswer = async (eventId: string, room: Room, place: Place, nowMs: number) => {
    const status = queueStatusOf(room, place, nowMs);
    if (!hasAccess(place, nowMs)) return status;
    if (place.collectedAtMs === null)
      deps.collections.note({ eventId, identity: place.identity, atMs: nowMs });
    const accessToken = deps.signer.signAccess({
      eventId,
      identity: place.identity,
      generation: room.generation,
      place: place.place ?? 0,
      admitAtMs: place.admitAtMs ?? nowMs,
      expiresAtMs: place.sessionEndsAtMs ?? nowMs,
    });
    return { ...status, accessToken };
  };

  const buyerOf = (request: FastifyRequest, reply: FastifyReply, eventId: string): string | null => {
    const identity = buyerIdentityOf(request, eventId, deps.signer);
    if (identity === null) {
      sendProblem(
        reply,
        problemOf(
          "queue_token_invalid",
          "send the Queue-Token that POST /v1/events/{eventId}/queue gave you",
        ),
      );
    }
    return identity;
  };

  /** A buyer's own place (GET and DELETE …/queue): the work gets the event and the Queue-Token's buyer. */
  const ownPlace =
    (work: (eventId: string, identity: string, reply: FastifyReply) => Promise<unknown>) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      const eventId = eventIdOf(request);
      // Whether the event has a room comes first (cached, cheap): anybody may learn it (the storefront
      // asks before it offers to sell), as they may from the waiting page's 404.
      if (!eventId || !(await deps.directory.roomOf(eventId))) return noRoom(reply);
      const identity = buyerOf(request, reply, eventId);
      if (identity === null) return reply;
      return work(eventId, identity, reply);
    };
  const ownPlaceRoute = {
    url: "/v1/events/:eventId/queue",
    tag: "waiting room",
    buyer: true,
    schema: { params: idParams("eventId"), headers: queueTokenHeadersSchema },
  } as const;

  return {
    putRoom: {
      method: "PUT",
      url: "/v1/events/:eventId/waiting-room",
      operationId: "putWaitingRoom",
      summary: "Turn on (or change) the event's waiting room: admission rate and/or cap, session, opening",
      tag: "waiting room",
      admin: true,
      schema: { params: idParams("eventId"), body: waitingRoomBodySchema },
      responses: {
        200: { description: "The room, changed", schema: waitingRoomSchema },
        401: problem("unauthorized"),
        201: { description: "The room, created", schema: waitingRoomSchema },
        404: problem("event_not_found"),
        409: problem("waiting_room_open: the room has opened, its opensAt can no longer move"),
        422: invalid,
        503: unavailable,
      },
      handler: async (request, reply) => {
        const eventId = eventIdOf(request);
        const event = eventId ? await deps.store.getEvent(eventId) : null;
        if (!eventId || !event) {
          return sendProblem(reply, problemOf("event_not_found", "no such event"));
        }
        const body = request.body as RoomBody;
        if (body.admissionRatePerSecond === undefined && body.maxActiveShoppers === undefined) {
          return sendProblem(
            reply,
            problemOf("invalid_request", "send admissionRatePerSecond, maxActiveShoppers, or both"),
          );
        }
        const nowMs = Date.now();
        const opening = openingOf(body, event.salesStartAt, nowMs);
        if (!opening.ok) return sendProblem(reply, problemOf("invalid_request", opening.detail));
        const result = await rooms.configure(eventId, {
          admissionRatePerSecond: body.admissionRatePerSecond ?? null,
          maxActiveShoppers: body.maxActiveShoppers ?? null,
          sessionSeconds: body.sessionSeconds ?? ROOM_LIMITS.sessionSeconds.default,
          opensAtMs: opening.opensAtMs,
          preQueueOpensAtMs: opening.preQueueOpensAtMs,
        });
        deps.directory.forget(eventId);
        if (!result.ok) {
          return sendProblem(
            reply,
            problemOf(
              "waiting_room_open",
              `the room opened at ${new Date(result.opensAtMs).toISOString()}; its opensAt can no longer move`,
            ),
          );
        }
        return reply.code(result.created ? 201 : 200).send(roomView(result.room, nowMs));
      },
    },
    getRoom: {
      method: "GET",
      url: "/v1/events/:eventId/waiting-room",
      operationId: "getWaitingRoom",
      summary: "The event's waiting room and its figures",
      tag: "waiting room",
      admin: true,
      schema: { params: idParams("eventId") },
      responses: {
        200: { description: "The room", schema: waitingRoomSchema },
        401: problem("unauthorized"),
        404: problem("waiting_room_not_found"),
      },
      handler: async (request, reply) => {
        const eventId = eventIdOf(request);
        const room = eventId ? await rooms.room(eventId) : null;
        if (!room) return noRoom(reply);
        return reply.send(roomView(room, Date.now()));
      },
    },
    deleteRoom: {
      method: "DELETE",
      url: "/v1/events/:eventId/waiting-room",
      operationId: "deleteWaitingRoom",
      summary:
        "Turn the waiting room off: orders and holds no longer need an access token; the queue is gone",
      tag: "waiting room",
      admin: true,
      schema: { params: idParams("eventId") },
      responses: {
        204: { description: "Removed" },
        401: problem("unauthorized"),
        404: problem("waiting_room_not_found"),
        503: unavailable,
      },
      handler: async (request, reply) => {
        const eventId = eventIdOf(request);
        if (!eventId || !(await rooms.remove(eventId))) return noRoom(reply);
        deps.directory.forget(eventId);
        return reply.code(204).send();
      },
    },
    joinQueue: {
      method: "POST",
      url: "/v1/events/:eventId/queue",
      operationId: "joinQueue",
      summary: "Join the event's queue: one place per buyer (joining again answers the same place)",
      tag: "waiting room",
      buyer: true,
      schema: { params: idParams("eventId"), body: emptyBodySchema, headers: queueTokenHeadersSchema },
      responses: {
        200: { description: "The place this buyer already had", schema: queueStatusSchema },
        201: { description: "A new place; keep queueToken", schema: queueStatusSchema },
        404: problem("waiting_room_not_found"),
        409: problem("queue_not_open: the pre-queue has not opened yet"),
        503: unavailable,
      },
      handler: async (request, reply) => {
        const eventId = eventIdOf(request);
        if (!eventId) return noRoom(reply);
        const identity =
          buyerIdentityOf(request, eventId, deps.signer) ?? randomBytes(16).toString("base64url");
        const joined = await joins.join(eventId, identity);
        if (!joined.ok) {
          if (joined.reason === "no_room") return noRoom(reply);
          return sendProblem(
            reply,
            problemOf(
              "queue_not_open",
              `the queue opens at ${new Date(joined.preQueueOpensAtMs).toISOString()}`,
            ),
          );
        }
        const answer = await placeAnswer(eventId, joined.room, joined.place, joined.nowMs);
        const queueToken = deps.signer.signQueue({ eventId, identity, issuedAtMs: joined.nowMs });
        return reply
          .code(joined.created ? 201 : 200)
          .header("cache-control", "no-store")
          .send({ ...answer, queueToken });
      },
    },
    getQueuePlace: {
      ...ownPlaceRoute,
      method: "GET",
      operationId: "getQueuePlace",
      summary: "Your place: position, people ahead, estimated wait; once admitted, the access token",
      responses: {
        200: { description: "The place", schema: queueStatusSchema },
        403: problem("queue_token_invalid"),
        404: problem("waiting_room_not_found, or not_in_queue (join again)"),
        503: unavailable,
      },
      handler: ownPlace(async (eventId, identity, reply) => {
        const view = await rooms.place(eventId, identity);
        if (!view) return noRoom(reply);
        if (!view.place)
          return sendProblem(reply, problemOf("not_in_queue", "no place for you here: join again"));
        const answer = await placeAnswer(eventId, view.room, view.place, view.nowMs);
        return reply.header("cache-control", "no-store").send(answer);
      }),
    },
    leaveQueue: {
      ...ownPlaceRoute,
      method: "DELETE",
      operationId: "leaveQueue",
      summary: "Leave the queue, or end your shopping session now (its access token stops working)",
      responses: {
        204: { description: "Left" },
        403: problem("queue_token_invalid"),
        404: problem("not_in_queue"),
        503: unavailable,
      },
      handler: ownPlace(async (eventId, identity, reply) => {
        if (!(await rooms.leave(eventId, identity))) {
          return sendProblem(reply, problemOf("not_in_queue", "no place for you here"));
        }
        return reply.code(204).send();
      }),
    },
  };
}
