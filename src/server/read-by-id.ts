/**
 * The handler of a GET of one resource by id.
 */
import { problemOf, sendProblem } from "./problem.js";
import type { RouteSpec } from "./route-spec.js";

/** A malformed id and an unknown one are both `missing` (404), so a made-up id tells nothing. */
export function readById<T>(
  param: string,
  isWellFormed: (id: string) => boolean,
  read: (id: string) => Promise<T | null>,
  missing: "event_not_found" | "order_not_found" | "hold_not_found",
): RouteSpec["handler"] {
  return async (request, reply) => {
    const id = (request.params as Record<string, string>)[param] ?? "";
    const found = isWellFormed(id) ? await read(id) : null;
    return (
      found ?? sendProblem(reply, problemOf(missing, `no such ${missing.slice(0, -"_not_found".length)}`))
    );
  };
}
