/**
 * JSON Schemas of the v1 API. The routes validate with them (ajv, no coercion, unknown fields rejected)
 * and /openapi.json is built from the very same objects, so the document cannot drift from the code.
 */
import {
  CUSTOMER_ID_PATTERN,
  HOLD_TTL_SECONDS,
  IDEMPOTENCY_KEY_PATTERN,
  MAX_TICKETS_PER_REQUEST,
  PAYMENT_REFERENCE_PATTERN,
} from "../domain/sale.js";
import { CURRENCY_PATTERN, MAX_TIERS, MAX_UNIT_PRICE, TIER_ID_PATTERN } from "../domain/pricing.js";
import {
  MAX_CAPACITY,
  MAX_HOLD_LIFETIME_SECONDS,
  MAX_ROWS,
  MAX_SEATS_PER_ROW,
  PRINTABLE_TEXT_PATTERN,
  SEAT_ID_PATTERN,
  SECTION_NAME_PATTERN,
} from "../domain/event.js";

/** A JSON Schema object; kept loose on purpose, ajv and OpenAPI 3.1 both read plain JSON Schema. */
export type JsonSchema = Record<string, unknown>;

/*
 * Every string a request can carry has a pattern, decided in src/domain and shared with the stores'
 * own checks: customer ids and names are 1 to 200 printable characters (no control characters, no lone
 * surrogates, no line or paragraph separators, not only white space); Idempotency-Key is printable
 * ASCII; seat ids are "<section>-<row>-<seat>". ajv compiles patterns with the `u` flag, so a lone
 * surrogate is one code point of category Cs and is refused.
 */
export { CUSTOMER_ID_PATTERN, IDEMPOTENCY_KEY_PATTERN, SEAT_ID_PATTERN };
/** An event id, as `nextCursor` gives it. */
const EVENT_ID_PATTERN = "^evt_[0-9A-HJKMNP-TV-Z]{26}$";

const nullableString = { type: ["string", "null"] } as const;
const time = { type: "string", format: "date-time" } as const;

export const problemSchema: JsonSchema = {
  type: "object",
  description: "RFC 9457 problem details",
  properties: {
    type: { type: "string" },
    title: { type: "string" },
    status: { type: "integer" },
    detail: { type: "string" },
    code: { type: "string" },
    seats: { type: "array", items: { type: "string" }, description: "For seats_unavailable only" },
    opensAt: { ...time, description: "For sale_not_open of a scheduled event: when the sale opens" },
  },
  required: ["type", "title", "status", "detail", "code"],
};

export const eventSchema: JsonSchema = {
  type: "object",
  properties: {
    id: { type: "string" },
    name: { type: "string" },
    kind: { type: "string", enum: ["general", "seated"] },
    capacity: { type: "integer" },
    sold: { type: "integer" },
    held: { type: "integer" },
    available: { type: "integer", description: "capacity - sold - held, read at one instant" },
    maxPerOrder: { type: "integer" },
    maxPerCustomer: { type: "integer" },
    startsAt: { ...nullableString, format: "date-time" },
    createdAt: time,
    description: nullableString,
    state: {
      type: "string",
      enum: ["draft", "scheduled", "on_sale", "paused", "closed"],
      description: "The sale's state now, by the database's clock: the admin status and the sale window",
    },
    salesStartAt: { ...nullableString, format: "date-time" },
    salesEndAt: { ...nullableString, format: "date-time" },
    confirmHoldsWhilePaused: { type: "boolean" },
    maxHoldLifetimeSeconds: { type: "integer" },
    currency: { type: "string", description: "ISO 4217; every price is in its minor units" },
    ticketTypes: {
      type: "array",
      description: "General admission: what `items` name (empty for seated events)",
      items: {
        type: "object",
        properties: {
          id: { type: "string" },
          name: { type: "string" },
          price: { type: "integer", description: "minor units" },
          quota: { type: ["integer", "null"] },
          maxPerOrder: { type: ["integer", "null"] },
        },
        required: ["id", "name", "price", "quota", "maxPerOrder"],
      },
    },
    priceZones: {
      type: "array",
      description: "Seated: how seats are priced (empty for general admission)",
      items: {
        type: "object",
        properties: {
          id: { type: "string" },
          name: { type: "string" },
          price: { type: "integer", description: "minor units" },
          section: nullableString,
          rows: {
            type: ["object", "null"],
            properties: { from: { type: "integer" }, to: { type: "integer" } },
            required: ["from", "to"],
          },
        },
        required: ["id", "name", "price", "section", "rows"],
      },
    },
  },
  required: [
    "id",
    "name",
    "kind",
    "capacity",
    "sold",
    "held",
    "available",
    "maxPerOrder",
    "maxPerCustomer",
    "startsAt",
    "createdAt",
    "description",
    "state",
    "salesStartAt",
    "salesEndAt",
    "confirmHoldsWhilePaused",
    "maxHoldLifetimeSeconds",
    "currency",
    "ticketTypes",
    "priceZones",
  ],
};

const tierReportSchema: JsonSchema = {
  type: "object",
  properties: {
    item: { type: "string", enum: ["ticket_type", "price_zone"] },
    id: { type: "string" },
    name: { type: "string" },
    unitPrice: { type: "integer" },
    quota: { type: ["integer", "null"], description: "price zones: the seats it prices" },
    sold: { type: "integer" },
    held: { type: "integer" },
    available: { type: "integer" },
    revenue: { type: "integer", description: "sold × unitPrice, minor units" },
  },
  required: ["item", "id", "name", "unitPrice", "quota", "sold", "held", "available", "revenue"],
};

export const reportSchema: JsonSchema = {
  type: "object",
  properties: {
    eventId: { type: "string" },
    name: { type: "string" },
    state: { type: "string" },
    currency: { type: "string" },
    capacity: { type: "integer" },
    sold: { type: "integer" },
    held: { type: "integer" },
    available: { type: "integer" },
    revenue: { type: "integer", description: "minor units of currency" },
    tiers: { type: "array", items: tierReportSchema },
  },
  required: [
    "eventId",
    "name",
    "state",
    "currency",
    "capacity",
    "sold",
    "held",
    "available",
    "revenue",
    "tiers",
  ],
};

export const eventPageSchema: JsonSchema = {
  type: "object",
  properties: { events: { type: "array", items: eventSchema }, nextCursor: nullableString },
  required: ["events", "nextCursor"],
};

export const seatMapSchema: JsonSchema = {
  type: "object",
  properties: {
    sections: {
      type: "array",
      items: {
        type: "object",
        properties: {
          name: { type: "string" },
          rows: {
            type: "array",
            items: {
              type: "object",
              properties: {
                row: { type: "integer" },
                seats: {
                  type: "array",
                  items: {
                    type: "object",
                    properties: {
                      id: { type: "string" },
                      status: { type: "string", enum: ["available", "held", "sold"] },
                    },
                    required: ["id", "status"],
                  },
                },
              },
              required: ["row", "seats"],
            },
          },
        },
        required: ["name", "rows"],
      },
    },
  },
  required: ["sections"],
};

const seatList = { type: ["array", "null"], items: { type: "string" } } as const;

/** What orders and holds both carry: who has which tickets of which event. */
const ticketsProperties = {
  id: { type: "string" },
  eventId: { type: "string" },
  customerId: { type: "string" },
  quantity: { type: "integer" },
  seats: seatList,
} as const;
const lineSchema: JsonSchema = {
  type: "object",
  properties: {
    item: { type: "string", enum: ["ticket_type", "price_zone"] },
    id: { type: "string", description: "the ticket type's or price zone's id" },
    name: { type: "string" },
    quantity: { type: "integer" },
    unitPrice: { type: "integer", description: "minor units, the event's price (never the buyer's)" },
    subtotal: { type: "integer", description: "quantity × unitPrice" },
  },
  required: ["item", "id", "name", "quantity", "unitPrice", "subtotal"],
};
const pricedProperties = {
  lines: { type: "array", items: lineSchema },
  total: { type: "integer", description: "the sum of the lines' subtotals, minor units" },
  currency: { type: "string" },
} as const;
const ticketsRequired = ["id", "eventId", "customerId", "quantity", "seats", "lines", "total", "currency"];

export const orderSchema: JsonSchema = {
  type: "object",
  properties: {
    ...ticketsProperties,
    status: { type: "string", enum: ["confirmed", "cancelled"] },
    createdAt: time,
    cancelledAt: { ...nullableString, format: "date-time" },
    ...pricedProperties,
    paymentReference: { ...nullableString, description: "as given when its hold was confirmed" },
  },
  required: [...ticketsRequired, "status", "createdAt", "cancelledAt", "paymentReference"],
};

export const holdSchema: JsonSchema = {
  type: "object",
  properties: {
    ...ticketsProperties,
    status: { type: "string", enum: ["active", "confirmed", "released", "expired"] },
    expiresAt: time,
    createdAt: time,
    ...pricedProperties,
  },
  required: [...ticketsRequired, "status", "expiresAt", "createdAt"],
};

const secretProperty = {
  type: "string",
  description:
    "The access secret: send it as X-Order-Secret to read, cancel, confirm, release or extend this order or hold. Answered on creation (and on an idempotent replay) only.",
} as const;

/** An order as its creator gets it (201): with its access secret. */
export const newOrderSchema: JsonSchema = {
  ...orderSchema,
  properties: { ...(orderSchema.properties as object), secret: secretProperty },
  required: [...(orderSchema.required as string[]), "secret"],
};

/** A hold as its creator gets it (201): with its access secret. */
export const newHoldSchema: JsonSchema = {
  ...holdSchema,
  properties: { ...(holdSchema.properties as object), secret: secretProperty },
  required: [...(holdSchema.required as string[]), "secret"],
};

export const orderPageSchema: JsonSchema = {
  type: "object",
  properties: { orders: { type: "array", items: orderSchema }, nextCursor: nullableString },
  required: ["orders", "nextCursor"],
};

export const healthSchema: JsonSchema = {
  type: "object",
  properties: { status: { type: "string" } },
  required: ["status"],
};

export const readySchema: JsonSchema = {
  type: "object",
  properties: {
    status: { type: "string", enum: ["ok", "unavailable"] },
    store: { type: "string" },
    lock: { type: "string" },
  },
  required: ["status", "store", "lock"],
};

const wholeNumber = (minimum: number, maximum: number) => ({ type: "integer", minimum, maximum }) as const;
const tierId = { type: "string", pattern: TIER_ID_PATTERN } as const;

/** What both creating and editing an event may set. */
const settingsProperties = {
  description: { type: ["string", "null"], maxLength: 5000 },
  salesStartAt: { ...nullableString, maxLength: 64, description: "RFC 3339; the sale opens then" },
  salesEndAt: { ...nullableString, maxLength: 64, description: "RFC 3339; the sale closes then" },
  confirmHoldsWhilePaused: {
    type: "boolean",
    description: "whether holds may be confirmed and extended while the sale is paused; default true",
  },
  maxHoldLifetimeSeconds: {
    ...wholeNumber(MAX_HOLD_LIFETIME_SECONDS.min, MAX_HOLD_LIFETIME_SECONDS.max),
    description: `the longest a hold lives from its creation, extensions included; default ${MAX_HOLD_LIFETIME_SECONDS.default}`,
  },
} as const;

const sectionSchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    name: { type: "string", minLength: 1, maxLength: 32, pattern: SECTION_NAME_PATTERN },
    rows: wholeNumber(1, MAX_ROWS),
    seatsPerRow: wholeNumber(1, MAX_SEATS_PER_ROW),
  },
  required: ["name", "rows", "seatsPerRow"],
};

/** POST /v1/events: general admission (capacity) or reserved seating (seating), never both. */
export const newEventBodySchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    name: { type: "string", minLength: 1, maxLength: 200, pattern: PRINTABLE_TEXT_PATTERN },
    capacity: wholeNumber(1, MAX_CAPACITY),
    seating: {
      type: "object",
      additionalProperties: false,
      properties: { sections: { type: "array", minItems: 1, maxItems: 100, items: sectionSchema } },
      required: ["sections"],
    },
    startsAt: { ...nullableString, maxLength: 64 },
    maxPerOrder: wholeNumber(1, 1000),
    maxPerCustomer: wholeNumber(1, MAX_CAPACITY),
    ...settingsProperties,
    state: { type: "string", enum: ["draft", "published"], description: "default published" },
    currency: { type: "string", pattern: CURRENCY_PATTERN, description: `ISO 4217, default "EUR"` },
    price: {
      ...wholeNumber(0, MAX_UNIT_PRICE),
      description:
        "minor units per ticket of an event without ticket types (seats no zone covers); default 0",
    },
    ticketTypes: {
      type: "array",
      minItems: 1,
      maxItems: MAX_TIERS,
      items: {
        type: "object",
        additionalProperties: false,
        properties: {
          id: tierId,
          name: { type: "string", minLength: 1, maxLength: 100, pattern: PRINTABLE_TEXT_PATTERN },
          price: wholeNumber(0, MAX_UNIT_PRICE),
          quota: { ...wholeNumber(0, MAX_CAPACITY), description: "at most this many sold + held" },
          maxPerOrder: wholeNumber(1, 1000),
        },
        required: ["name", "price"],
      },
    },
    priceZones: {
      type: "array",
      maxItems: MAX_TIERS,
      items: {
        type: "object",
        additionalProperties: false,
        properties: {
          id: tierId,
          name: { type: "string", minLength: 1, maxLength: 100, pattern: PRINTABLE_TEXT_PATTERN },
          price: wholeNumber(0, MAX_UNIT_PRICE),
          section: { type: "string", pattern: SECTION_NAME_PATTERN },
          rows: {
            type: "object",
            additionalProperties: false,
            properties: { from: wholeNumber(1, MAX_ROWS), to: wholeNumber(1, MAX_ROWS) },
            required: ["from", "to"],
          },
        },
        required: ["name", "price", "section"],
      },
    },
  },
  required: ["name"],
  oneOf: [{ required: ["capacity"] }, { required: ["seating"] }],
};

/** PATCH /v1/events/{eventId}: any of these; the rest stays as it is. */
export const eventUpdateBodySchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  properties: {
    name: { type: "string", minLength: 1, maxLength: 200, pattern: PRINTABLE_TEXT_PATTERN },
    capacity: wholeNumber(1, MAX_CAPACITY),
    maxPerOrder: wholeNumber(1, 1000),
    maxPerCustomer: wholeNumber(1, MAX_CAPACITY),
    ...settingsProperties,
  },
};

const selectionProperties = {
  customerId: { type: "string", minLength: 1, maxLength: 200, pattern: CUSTOMER_ID_PATTERN },
  quantity: wholeNumber(1, MAX_TICKETS_PER_REQUEST),
  seats: {
    type: "array",
    minItems: 1,
    maxItems: MAX_TICKETS_PER_REQUEST,
    uniqueItems: true,
    items: {
      type: "string",
      minLength: 5,
      maxLength: 44,
      pattern: SEAT_ID_PATTERN,
      description: '"<section>-<row>-<seat>", rows and seats numbered from 1, e.g. "A-1-1"',
    },
  },
  items: {
    type: "array",
    minItems: 1,
    maxItems: MAX_TIERS,
    description: "general admission: tickets by type (never a price: the server prices them)",
    items: {
      type: "object",
      additionalProperties: false,
      properties: { ticketTypeId: tierId, quantity: wholeNumber(1, MAX_TICKETS_PER_REQUEST) },
      required: ["ticketTypeId", "quantity"],
    },
  },
} as const;

/**
 * POST /v1/events/{eventId}/orders: `quantity` for general admission, `seats` for reserved seating.
 * customerId is required unless a verified buyer's token names the customer (--buyer-auth jwt); the
 * handler says so, as the schema cannot know who is calling.
 */
export const orderBodySchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: selectionProperties,
  oneOf: [{ required: ["quantity"] }, { required: ["seats"] }, { required: ["items"] }],
};

/** POST /v1/events/{eventId}/holds: as an order, plus how long the hold lasts. */
export const holdBodySchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    ...selectionProperties,
    ttlSeconds: wholeNumber(HOLD_TTL_SECONDS.min, HOLD_TTL_SECONDS.max),
  },
  oneOf: [{ required: ["quantity"] }, { required: ["seats"] }, { required: ["items"] }],
};

/** POST /v1/holds/{holdId}/confirm: optionally, the payment provider's reference, kept on the order. */
export const confirmBodySchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    paymentReference: {
      type: "string",
      minLength: 1,
      maxLength: 200,
      pattern: PAYMENT_REFERENCE_PATTERN,
      description: "printable ASCII, kept on the order",
    },
  },
};

/** POST /v1/holds/{holdId}/extend: the new lifetime from now (capped by maxHoldLifetimeSeconds). */
export const extendBodySchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: { ttlSeconds: wholeNumber(HOLD_TTL_SECONDS.min, HOLD_TTL_SECONDS.max) },
};

/** Cancel takes no body; an empty object is accepted too. */
export const emptyBodySchema: JsonSchema = { type: "object", additionalProperties: false, properties: {} };

export const idempotencyHeadersSchema: JsonSchema = {
  type: "object",
  properties: { "idempotency-key": { type: "string", pattern: IDEMPOTENCY_KEY_PATTERN } },
};

export const listEventsQuerySchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    // Query values are strings and coercion is off; the handler turns this one into a number.
    limit: { type: "string", pattern: "^(?:[1-9]|[1-9][0-9]|100)$", description: "1 to 100, default 20" },
    cursor: { type: "string", pattern: EVENT_ID_PATTERN, description: "the previous page's nextCursor" },
  },
};

/** An order id, as `nextCursor` gives it. */
const ORDER_ID_PATTERN = "^ord_[0-9A-HJKMNP-TV-Z]{26}_[0-9A-HJKMNP-TV-Z]{26}$";
/** An instant with a zone, e.g. 2026-11-30T18:00:00Z or 2026-11-30T19:00:00.000+01:00. */
const INSTANT_PATTERN = "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(?:\\.\\d{1,9})?(?:Z|[+-]\\d{2}:\\d{2})$";

/** The filters of GET /v1/events/{eventId}/orders and its CSV export. */
const orderFilterProperties = {
  status: { type: "string", enum: ["confirmed", "cancelled"], description: "only orders in this status" },
  customerId: {
    type: "string",
    minLength: 1,
    maxLength: 200,
    pattern: CUSTOMER_ID_PATTERN,
    description: "only this customer's orders",
  },
  createdAfter: {
    type: "string",
    maxLength: 40,
    pattern: INSTANT_PATTERN,
    description: "only orders created at or after this instant (ISO 8601 with a zone)",
  },
  createdBefore: {
    type: "string",
    maxLength: 40,
    pattern: INSTANT_PATTERN,
    description: "only orders created before this instant (ISO 8601 with a zone)",
  },
} as const;

export const listOrdersQuerySchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    ...orderFilterProperties,
    limit: {
      type: "string",
      pattern: "^(?:[1-9][0-9]{0,2}|1000)$",
      description: "1 to 1000, default 100",
    },
    cursor: { type: "string", pattern: ORDER_ID_PATTERN, description: "the previous page's nextCursor" },
  },
};

export const exportOrdersQuerySchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: orderFilterProperties,
};

export const idParams = (name: string): JsonSchema => ({
  type: "object",
  properties: { [name]: { type: "string" } },
  required: [name],
});

/*
 * The waiting room (routes/waiting-room.ts). Its tokens travel in headers: `Queue-Token` (who holds a
 * place) and `Access-Token` (admitted: may buy until the session ends). Both are opaque to clients.
 */
const token = (description: string) => ({ type: "string", maxLength: 2048, description }) as const;

export const QUEUE_TOKEN_HEADER = "queue-token";
export const ACCESS_TOKEN_HEADER = "access-token";

/** Admission rate bounds (buyers per second), cap and session length bounds of a room. */
export const ROOM_LIMITS = {
  rate: { min: 0.01, max: 100_000 },
  cap: { min: 1, max: 1_000_000 },
  sessionSeconds: { min: 30, max: 86_400, default: 600 },
} as const;

export const waitingRoomBodySchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    admissionRatePerSecond: {
      type: "number",
      minimum: ROOM_LIMITS.rate.min,
      maximum: ROOM_LIMITS.rate.max,
      description: "buyers let in per second, across every instance",
    },
    maxActiveShoppers: {
      ...wholeNumber(ROOM_LIMITS.cap.min, ROOM_LIMITS.cap.max),
      description: "admitted buyers whose session has not ended, at most",
    },
    sessionSeconds: {
      ...wholeNumber(ROOM_LIMITS.sessionSeconds.min, ROOM_LIMITS.sessionSeconds.max),
      description: "how long an admitted buyer may shop (default 600)",
    },
    opensAt: {
      ...time,
      description: "when admission starts; buyers who joined before it are shuffled (default: now)",
    },
    preQueueOpensAt: {
      ...time,
      description: "when buyers may start joining (default: now, or opensAt if earlier)",
    },
  },
  anyOf: [{ required: ["admissionRatePerSecond"] }, { required: ["maxActiveShoppers"] }],
};

export const waitingRoomSchema: JsonSchema = {
  type: "object",
  properties: {
    eventId: { type: "string" },
    admissionRatePerSecond: { type: ["number", "null"] },
    maxActiveShoppers: { type: ["integer", "null"] },
    sessionSeconds: { type: "integer" },
    opensAt: time,
    preQueueOpensAt: time,
    state: { type: "string", enum: ["scheduled", "pre-queue", "open"] },
    preQueue: { type: "integer", description: "buyers who joined before the opening" },
    joined: { type: "integer", description: "buyers who ever took a place" },
    admitted: { type: "integer", description: "places let in (or passed over, having left)" },
    waiting: { type: "integer", description: "places not let in yet (some may have left)" },
  },
  required: [
    "eventId",
    "admissionRatePerSecond",
    "maxActiveShoppers",
    "sessionSeconds",
    "opensAt",
    "preQueueOpensAt",
    "state",
    "preQueue",
    "joined",
    "admitted",
    "waiting",
  ],
};

export const queueStatusSchema: JsonSchema = {
  type: "object",
  properties: {
    state: { type: "string", enum: ["pre-queue", "waiting", "admitted", "session-ended", "left"] },
    position: { type: ["integer", "null"], description: "1 = next; null in the pre-queue" },
    peopleAhead: { type: ["integer", "null"] },
    estimatedWaitSeconds: { type: ["integer", "null"] },
    opensAt: time,
    admitAt: { ...nullableString, format: "date-time" },
    sessionEndsAt: { ...nullableString, format: "date-time" },
    pollAfterMs: {
      type: "integer",
      description:
        "ask again (or, holding accessToken, buy) after this many milliseconds: once admitAt is known, that instant plus less than one slot's spacing",
    },
    pollAfterSeconds: { type: "integer", description: "pollAfterMs in whole seconds, rounded up" },
    queueToken: token("send it as Queue-Token to read your place (POST answers it)"),
    accessToken: token(
      "once admitAt is known: send it as Access-Token with orders and holds from admitAt until sessionEndsAt (one sent before admitAt waits until then)",
    ),
  },
  required: [
    "state",
    "position",
    "peopleAhead",
    "estimatedWaitSeconds",
    "opensAt",
    "admitAt",
    "sessionEndsAt",
    "pollAfterMs",
    "pollAfterSeconds",
  ],
};

export const queueTokenHeadersSchema: JsonSchema = {
  type: "object",
  properties: { [QUEUE_TOKEN_HEADER]: token("the queue token POST …/queue answered") },
};

/** Orders and holds: the Idempotency-Key, and the waiting room's tokens for an event behind a room. */
export const sellHeadersSchema: JsonSchema = {
  type: "object",
  properties: {
    ...(idempotencyHeadersSchema.properties as Record<string, JsonSchema>),
    [ACCESS_TOKEN_HEADER]: token(
      "needed when the event has a waiting room: the access token of your admission",
    ),
    [QUEUE_TOKEN_HEADER]: token("with an Access-Token: the queue token it was issued with (who you are)"),
  },
};
