/**
 * JSON Schemas of the v1 API. The routes validate with them (ajv, no coercion, unknown fields rejected)
 * and /openapi.json is built from the very same objects, so the document cannot drift from the code.
 */
import {
  CUSTOMER_ID_PATTERN,
  HOLD_TTL_SECONDS,
  IDEMPOTENCY_KEY_PATTERN,
  MAX_TICKETS_PER_REQUEST,
} from "../domain/sale.js";
import {
  MAX_CAPACITY,
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
const ticketsRequired = ["id", "eventId", "customerId", "quantity", "seats"];

export const orderSchema: JsonSchema = {
  type: "object",
  properties: {
    ...ticketsProperties,
    status: { type: "string", enum: ["confirmed", "cancelled"] },
    createdAt: time,
    cancelledAt: { ...nullableString, format: "date-time" },
  },
  required: [...ticketsRequired, "status", "createdAt", "cancelledAt"],
};

export const holdSchema: JsonSchema = {
  type: "object",
  properties: {
    ...ticketsProperties,
    status: { type: "string", enum: ["active", "confirmed", "released", "expired"] },
    expiresAt: time,
  },
  required: [...ticketsRequired, "status", "expiresAt"],
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
  },
  required: ["name"],
  oneOf: [{ required: ["capacity"] }, { required: ["seating"] }],
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
  oneOf: [{ required: ["quantity"] }, { required: ["seats"] }],
};

/** POST /v1/events/{eventId}/holds: as an order, plus how long the hold lasts. */
export const holdBodySchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    ...selectionProperties,
    ttlSeconds: wholeNumber(HOLD_TTL_SECONDS.min, HOLD_TTL_SECONDS.max),
  },
  oneOf: [{ required: ["quantity"] }, { required: ["seats"] }],
};

/** Confirm and cancel take no body; an empty object is accepted too. */
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
