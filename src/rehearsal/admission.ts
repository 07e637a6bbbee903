/**
 * The step a buyer takes before buying: the door of the event. An event without a waiting room has an
 * open door (`OPEN_DOOR`); one with a room makes its buyers join the queue, wait for their turn as the
 * answers say and carry the pass they get on every request after (waiting-room-gate.ts). The door is
 * chosen per event in surge.ts (`gateFor`), with nothing else in the buyer's flow to change:
 *
 *   const admission = await target.gate.admit(buyer);   // join, wait for the turn, take the pass
 *   if (admission === null) return;                      // turned away (the room closed, sold out)
 *   client.send({ ..., headers: admission.headers });    // the pass travels with every request
 *
 * The time from arrival to admission is charted as "admissions" beside the arrivals, so a room that
 * lets buyers in slower than they come shows as the gap between the two lines.
 */

/** Who is at the door. */
export interface Buyer {
  /** The buyer's number in the run, from 0. */
  index: number;
  customerId: string;
}

/** What a buyer got at the door: the headers to send with every request after it (a pass, say). */
export interface Admission {
  headers: Readonly<Record<string, string>>;
}

export interface AdmissionGate {
  /** A name for the report: "open" or the kind of room. */
  readonly name: string;
  /**
   * Resolves when `buyer` may buy, with what to carry; null when turned away. Requests it makes (joining
   * a queue, polling its position) are its own business and not ClientRecords of the sale.
   */
  admit(buyer: Buyer, eventId: string): Promise<Admission | null>;
}

/** An event without a waiting room: everyone is in at once, carrying nothing. */
export const OPEN_DOOR: AdmissionGate = {
  name: "open",
  admit: () => Promise.resolve({ headers: {} }),
};
