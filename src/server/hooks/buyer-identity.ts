/**
 * Who is calling a buyer route, found once per request in an onRequest hook and kept on the request as
 * `request.caller`:
 * - `admin`: `Authorization: Bearer <admin token>`;
 * - `buyer`: with --buyer-auth jwt, `Authorization: Bearer <JWT>` that the operator's login signed, its
 *   signature, `iss`, `aud`, `exp` and `nbf` checked by jose with the algorithm pinned to the key; the
 *   customer is its `sub`;
 * - `anonymous`: no Authorization header.
 * A bearer that is neither the admin token nor a valid buyer token is answered 401 at once: a client
 * whose token expired hears so, instead of being served as somebody else.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { CryptoKey, JWTVerifyGetKey, KeyObject } from "jose";
import type { BuyerAuthConfig } from "../../config/buyer-auth.js";
import { CUSTOMER_ID_PATTERN } from "../../domain/sale.js";
import type { AdminTokenCheck } from "../../http/admin-token-check.js";
import { problemOf, sendProblem } from "../problem.js";

export type Caller = { kind: "admin" } | { kind: "buyer"; customerId: string } | { kind: "anonymous" };

declare module "fastify" {
  interface FastifyRequest {
    /** Set by BuyerIdentity's hook on buyer routes; null on the others. */
    caller: Caller | null;
  }
}

const ANONYMOUS: Caller = Object.freeze({ kind: "anonymous" });
const ADMIN: Caller = Object.freeze({ kind: "admin" });
const CUSTOMER_ID = new RegExp(CUSTOMER_ID_PATTERN, "u");
/** A compact JWS is three base64url parts; anything else is refused before jose sees it. */
const COMPACT_JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const MAX_TOKEN_LENGTH = 8192;

/** The token's sub, or throws with the reason it is refused. */
type Verify = (token: string) => Promise<string>;

type Jose = typeof import("jose");

/** Why a token was refused, in words a client can act on (never the key or the expected values). */
function reasonOf(error: unknown, joseErrors: Jose["errors"]): string {
  if (error instanceof joseErrors.JWTExpired) return "the buyer token has expired";
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    return error.claim === "nbf"
      ? "the buyer token is not valid yet"
      : `the buyer token's ${error.claim} claim is not accepted`;
  }
  return "the buyer token is not valid";
}

export class BuyerIdentity {
  readonly #adminCheck: AdminTokenCheck;
  readonly #verify: Verify | null;
  readonly #auth: BuyerAuthConfig;

  private constructor(adminCheck: AdminTokenCheck, auth: BuyerAuthConfig, verify: Verify | null) {
    this.#adminCheck = adminCheck;
    this.#auth = auth;
    this.#verify = verify;
  }

  /**
   * Builds the verifier once (the key imported, the JWKS parsed). jose is loaded only here, with
   * --buyer-auth jwt, so that the embedded default starts without it.
   */
  static async create(adminCheck: AdminTokenCheck, auth: BuyerAuthConfig): Promise<BuyerIdentity> {
    if (auth.kind === "none") return new BuyerIdentity(adminCheck, auth, null);
    const { createLocalJWKSet, errors, importSPKI, jwtVerify } = await import("jose");
    const { key } = auth;
    let getKey: Uint8Array | CryptoKey | KeyObject | JWTVerifyGetKey;
    if (key.kind === "secret") getKey = new TextEncoder().encode(key.secret);
    else if (key.kind === "public-key") getKey = await importSPKI(key.pem, key.algorithms[0]);
    else getKey = createLocalJWKSet(key.jwks as Parameters<typeof createLocalJWKSet>[0]);
    const options = {
      issuer: auth.issuer,
      audience: auth.audience,
      algorithms: [...key.algorithms],
      clockTolerance: auth.clockToleranceSeconds,
      requiredClaims: ["sub", "exp"],
    };
    const verify: Verify = async (token) => {
      try {
        const { payload } =
          typeof getKey === "function"
            ? await jwtVerify(token, getKey, options)
            : await jwtVerify(token, getKey, options);
        return payload.sub ?? "";
      } catch (error) {
        throw new Error(reasonOf(error, errors));
      }
    };
    return new BuyerIdentity(adminCheck, auth, verify);
  }

  /** True with --buyer-auth jwt: buying needs a buyer token (or the admin token). */
  get verifiesBuyers(): boolean {
    return this.#auth.kind === "jwt";
  }

  /** The onRequest hook of every buyer route: sets `request.caller`, or answers 401. */
  readonly hook = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const authorization = request.headers.authorization;
    if (authorization === undefined) {
      request.caller = ANONYMOUS;
      return undefined;
    }
    if (this.#adminCheck.allows(authorization)) {
      request.caller = ADMIN;
      return undefined;
    }
    const refuse = (detail: string) => sendProblem(reply, problemOf("unauthorized", detail));
    if (this.#verify === null) {
      return refuse("this server takes no buyer tokens (--buyer-auth none); send no Authorization header");
    }
    const token = /^Bearer ([^ ]+)$/.exec(authorization)?.[1];
    if (token === undefined || token.length > MAX_TOKEN_LENGTH || !COMPACT_JWT.test(token)) {
      return refuse("send Authorization: Bearer <buyer token>");
    }
    let sub: string;
    try {
      sub = await this.#verify(token);
    } catch (error) {
      return refuse((error as Error).message);
    }
    if (!CUSTOMER_ID.test(sub) || sub.length > 200) {
      return refuse("the buyer token's sub must be 1 to 200 printable characters");
    }
    request.caller = { kind: "buyer", customerId: sub };
    return undefined;
  };
}
