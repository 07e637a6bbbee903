/**
 * The settings of `boxoffice rehearse`, in the same table style as every command's: each option once,
 * with its flag, variable, default, bounds and meaning. `boxoffice rehearse --help` and the frozen
 * RehearsalConfig are built from it. Variables: BOXOFFICE_ADMIN_TOKEN, and `BOXOFFICE_REHEARSE_<NAME>`
 * for every other option.
 */
import { ConfigError } from "../domain/errors.js";
import type { FlagValues, Setting, SettingsOf } from "./settings.js";
import { numberFrom, oneOf, readSettings, text, wholeNumber } from "./settings.js";

/** What a buyer does after arriving; the mix gives each a weight. */
export type BuyerFlow = "order" | "hold-confirm" | "hold-release" | "order-cancel" | "hold-abandon";

export const BUYER_FLOWS: readonly BuyerFlow[] = [
  "order",
  "hold-confirm",
  "hold-release",
  "order-cancel",
  "hold-abandon",
];

/** The relative weight of each flow; they need not add up to anything. */
export type FlowMix = Readonly<Record<BuyerFlow, number>>;

/** `order=60,hold-confirm=25,...`: flows not named get 0; at least one weight above 0. */
export function parseMix(value: string, name: string): FlowMix {
  const mix: Record<BuyerFlow, number> = {
    order: 0,
    "hold-confirm": 0,
    "hold-release": 0,
    "order-cancel": 0,
    "hold-abandon": 0,
  };
  for (const part of value.split(",").map((p) => p.trim())) {
    if (part === "") continue;
    const match = /^([a-z-]+)=(\d+(?:\.\d+)?)$/.exec(part);
    const flow = match?.[1] as BuyerFlow | undefined;
    if (!match || flow === undefined || !BUYER_FLOWS.includes(flow)) {
      throw new ConfigError(
        `${name}: "${part}" is not <flow>=<weight> with a flow among ${BUYER_FLOWS.join(", ")}`,
      );
    }
    mix[flow] = Number(match[2]);
  }
  if (Object.values(mix).every((weight) => weight === 0)) {
    throw new ConfigError(`${name} must give at least one flow a weight above 0`);
  }
  return Object.freeze(mix);
}

/** The seated events the rehearsal creates: sections × rows × seats per row. */
export interface SeatingShape {
  sections: number;
  rows: number;
  seatsPerRow: number;
}

function seatingShape(value: string, name: string): SeatingShape {
  const match = /^(\d{1,3})x(\d{1,4})x(\d{1,4})$/.exec(value.trim());
  const [sections, rows, seatsPerRow] = (match?.slice(1) ?? []).map(Number);
  if (!match || !sections || !rows || !seatsPerRow || sections > 26 || sections * rows * seatsPerRow > 1e6) {
    throw new ConfigError(
      `${name} must be <sections>x<rows>x<seats per row> (at most 26 sections, 1,000,000 seats), not "${value}"`,
    );
  }
  return { sections, rows, seatsPerRow };
}

function eventIds(value: string, name: string): readonly string[] {
  const ids = value
    .split(/[\s,]+/)
    .map((id) => id.trim())
    .filter((id) => id !== "");
  for (const id of ids) {
    if (!/^[A-Za-z0-9_-]{1,100}$/.test(id)) throw new ConfigError(`${name}: "${id}" is not an event id`);
  }
  return Object.freeze(ids);
}

function urlOrigin(value: string, name: string): string {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new ConfigError(`${name} must be a URL like http://127.0.0.1:8080, not "${value}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`${name} must be an http:// or https:// URL, not "${value}"`);
  }
  return url.origin;
}

function urlList(value: string, name: string): readonly string[] {
  return Object.freeze(
    value
      .split(/[\s,]+/)
      .filter((part) => part !== "")
      .map((part) => urlOrigin(part, name)),
  );
}

export const REHEARSAL_SETTINGS = {
  url: {
    flag: "url",
    env: "BOXOFFICE_REHEARSE_URL",
    description: "the boxoffice to rehearse against: the balancer (or any instance) of a staging cluster",
    defaultText: "http://127.0.0.1:8080",
    valueName: "url",
    parse: urlOrigin,
  },
  rate: {
    flag: "rate",
    env: "BOXOFFICE_REHEARSE_RATE",
    description: "buyers arriving per second at full rate (open loop: arrivals never wait for answers)",
    defaultText: "50",
    valueName: "per-second",
    parse: numberFrom(0.1),
  },
  rampSeconds: {
    flag: "ramp-seconds",
    env: "BOXOFFICE_REHEARSE_RAMP_SECONDS",
    description:
      "seconds over which the arrival rate climbs from 0 to --rate (longer than the duration: it never gets there)",
    defaultText: "5",
    parse: numberFrom(0),
  },
  durationSeconds: {
    flag: "duration-seconds",
    env: "BOXOFFICE_REHEARSE_DURATION_SECONDS",
    description: "seconds during which buyers arrive (the ramp included)",
    defaultText: "30",
    parse: numberFrom(0.1),
  },
  buyers: {
    flag: "buyers",
    env: "BOXOFFICE_REHEARSE_BUYERS",
    description: "stop arrivals after this many buyers, even before the duration ends (0: no limit)",
    defaultText: "0",
    parse: wholeNumber(0, 10_000_000),
  },
  arrivals: {
    flag: "arrivals",
    env: "BOXOFFICE_REHEARSE_ARRIVALS",
    description: "poisson (random gaps, as real buyers) or uniform (evenly spaced)",
    defaultText: "poisson",
    parse: oneOf("poisson", "uniform"),
  },
  events: {
    flag: "event",
    env: "BOXOFFICE_REHEARSE_EVENTS",
    description:
      "an existing event to sell (repeat the flag for several); none: the rehearsal creates its own",
    defaultText: "",
    valueName: "event-id",
    repeatable: true,
    parse: eventIds,
  },
  create: {
    flag: "create",
    env: "BOXOFFICE_REHEARSE_CREATE",
    description: "events to create when no --event is given: general, seated, or general,seated",
    defaultText: "general,seated",
    parse: (value: string, name: string): readonly ("general" | "seated")[] => {
      const kinds = value.split(",").map((kind) => oneOf("general", "seated")(kind.trim(), name));
      return Object.freeze([...new Set(kinds)]);
    },
  },
  capacity: {
    flag: "capacity",
    env: "BOXOFFICE_REHEARSE_CAPACITY",
    description: "tickets of the general admission event it creates",
    defaultText: "2000",
    parse: wholeNumber(1, 1_000_000),
  },
  seating: {
    flag: "seating",
    env: "BOXOFFICE_REHEARSE_SEATING",
    description: "the seated event it creates: <sections>x<rows>x<seats per row>",
    defaultText: "2x20x25",
    valueName: "SxRxN",
    parse: seatingShape,
  },
  mix: {
    flag: "mix",
    env: "BOXOFFICE_REHEARSE_MIX",
    description:
      "weights of what buyers do: order, hold-confirm, hold-release, order-cancel, hold-abandon (a hold left to expire)",
    defaultText: "order=60,hold-confirm=25,hold-release=7,order-cancel=5,hold-abandon=3",
    valueName: "flow=weight,...",
    parse: parseMix,
  },
  maxTickets: {
    flag: "max-tickets",
    env: "BOXOFFICE_REHEARSE_MAX_TICKETS",
    description: "a buyer asks for 1 to this many tickets (bounded by the event's maxPerOrder)",
    defaultText: "4",
    parse: wholeNumber(1, 1000),
  },
  holdTtlSeconds: {
    flag: "hold-ttl-seconds",
    env: "BOXOFFICE_REHEARSE_HOLD_TTL_SECONDS",
    description: "lifetime of the holds buyers take (30 to 1800)",
    defaultText: "30",
    parse: wholeNumber(30, 1800),
  },
  thinkMs: {
    flag: "think-ms",
    env: "BOXOFFICE_REHEARSE_THINK_MS",
    description: "longest pause of a buyer between a hold and its confirm, release or cancel",
    defaultText: "1000",
    parse: wholeNumber(0, 600_000),
  },
  maxAttempts: {
    flag: "max-attempts",
    env: "BOXOFFICE_REHEARSE_MAX_ATTEMPTS",
    description: "attempts per request when answered 503 or cut off (retries keep the Idempotency-Key)",
    defaultText: "8",
    parse: wholeNumber(1, 100),
  },
  maxRetryWaitMs: {
    flag: "max-retry-wait-ms",
    env: "BOXOFFICE_REHEARSE_MAX_RETRY_WAIT_MS",
    description: "longest wait before a retry: a longer Retry-After ends the attempts instead",
    defaultText: "30000",
    parse: wholeNumber(1, 600_000),
  },
  connections: {
    flag: "connections",
    env: "BOXOFFICE_REHEARSE_CONNECTIONS",
    description: "most connections open to the URL at once (requests beyond wait for one)",
    defaultText: "128",
    parse: wholeNumber(1, 100_000),
  },
  maxInFlight: {
    flag: "max-in-flight",
    env: "BOXOFFICE_REHEARSE_MAX_IN_FLIGHT",
    description: "most buyers under way at once; an arrival beyond it is counted as turned away, not delayed",
    defaultText: "20000",
    parse: wholeNumber(1, 10_000_000),
  },
  requestTimeoutMs: {
    flag: "request-timeout-ms",
    env: "BOXOFFICE_REHEARSE_REQUEST_TIMEOUT_MS",
    description: "longest wait for one answer; then the attempt counts as cut off and is retried",
    defaultText: "15000",
    parse: wholeNumber(100, 600_000),
  },
  instanceUrls: {
    flag: "instance-url",
    env: "BOXOFFICE_REHEARSE_INSTANCE_URLS",
    description: "an instance behind the URL, for the verifier to read directly too (repeat for several)",
    defaultText: "",
    valueName: "url",
    repeatable: true,
    parse: urlList,
  },
  out: {
    flag: "out",
    env: "BOXOFFICE_REHEARSE_OUT",
    description: "directory for the report: each run writes <out>/<time>/report.html, report.json, …",
    defaultText: "./rehearsals",
    valueName: "dir",
    parse: text(),
  },
  verifyOnly: {
    flag: "verify-only",
    env: "BOXOFFICE_REHEARSE_VERIFY_ONLY",
    description: "send no buyers: verify the system as it is now against an earlier run's report.json",
    defaultText: "",
    valueName: "report.json",
    parse: (value: string): string | null => (value === "" ? null : value),
  },
  seed: {
    flag: "seed",
    env: "BOXOFFICE_REHEARSE_SEED",
    description: "seed of the random choices (arrival gaps, flows, seats), to repeat a run; 0: random",
    defaultText: "0",
    parse: wholeNumber(0, 2 ** 31 - 1),
  },
  /** Never a flag: a command line shows in `ps`. */
  adminToken: {
    flag: null,
    env: "BOXOFFICE_ADMIN_TOKEN",
    description: "the cluster's admin token: to create events, and for the verifier's reads",
    defaultText: "",
    parse: (value: string, name: string): string | null => {
      if (value === "") return null;
      if (!/^[\x21-\x7E]{16,512}$/.test(value)) {
        throw new ConfigError(`${name} must be 16 to 512 printable ASCII characters`);
      }
      return value;
    },
  },
} satisfies Record<string, Setting<unknown>>;

/** The typed, frozen configuration of one rehearsal; each field is described in REHEARSAL_SETTINGS. */
export type RehearsalConfig = SettingsOf<typeof REHEARSAL_SETTINGS>;

/** Builds the frozen config: flags win over variables, which win over defaults. */
export function loadRehearsalConfig(
  flags: FlagValues,
  env: NodeJS.ProcessEnv = process.env,
): RehearsalConfig {
  // A ramp longer than the duration is allowed: the rate then climbs until arrivals stop.
  return readSettings(REHEARSAL_SETTINGS, flags, env);
}
