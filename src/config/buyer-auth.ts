/**
 * How buyers prove who they are, resolved from the server settings (--buyer-auth and the buyerJwt*
 * settings) with the key files read: `none` takes the body's customerId as sent; `jwt` takes the `sub`
 * of a token the operator's login signed (server/hooks/buyer-identity.ts verifies it). The algorithm is
 * pinned by the kind of key: HS256 for a shared secret, RS256 for an RSA key, ES256 for a P-256 key;
 * never `none`, and never HS256 with a public key (the key-confusion attack).
 */
import { createPublicKey } from "node:crypto";
import { promises as fs } from "node:fs";
import { ConfigError } from "../domain/errors.js";
import type { ServerConfig } from "./server-config.js";

/** A JSON Web Key Set as read from its file: only public RSA and EC keys are accepted. */
export interface JsonWebKeySet {
  keys: Record<string, unknown>[];
}

export type BuyerJwtKey =
  | { kind: "secret"; secret: string; algorithms: ["HS256"] }
  | { kind: "public-key"; pem: string; algorithms: ["RS256"] | ["ES256"] }
  | { kind: "jwks"; jwks: JsonWebKeySet; algorithms: ("RS256" | "ES256")[] };

export type BuyerAuthConfig =
  | { kind: "none" }
  | {
      kind: "jwt";
      key: BuyerJwtKey;
      issuer: string;
      audience: string;
      clockToleranceSeconds: number;
    };

export const NO_BUYER_AUTH: BuyerAuthConfig = Object.freeze({ kind: "none" });

/** The buyer auth a server config asks for, its key file read and checked; throws ConfigError. */
export async function resolveBuyerAuth(config: ServerConfig): Promise<BuyerAuthConfig> {
  if (config.buyerAuth === "none") return NO_BUYER_AUTH;
  // loadServerConfig checked that exactly one key and both claims are set.
  const common = {
    issuer: config.buyerJwtIssuer ?? "",
    audience: config.buyerJwtAudience ?? "",
    clockToleranceSeconds: config.buyerJwtClockToleranceSeconds,
  };
  if (config.buyerJwtSecret !== null) {
    return {
      kind: "jwt",
      key: { kind: "secret", secret: config.buyerJwtSecret, algorithms: ["HS256"] },
      ...common,
    };
  }
  if (config.buyerJwtPublicKey !== null) {
    const pem = await readKeyFile(config.buyerJwtPublicKey, "--buyer-jwt-public-key");
    return { kind: "jwt", key: publicKeyOf(pem, "--buyer-jwt-public-key"), ...common };
  }
  const text = await readKeyFile(config.buyerJwtJwks ?? "", "--buyer-jwt-jwks");
  return { kind: "jwt", key: jwksOf(text, "--buyer-jwt-jwks"), ...common };
}

async function readKeyFile(file: string, name: string): Promise<string> {
  try {
    return await fs.readFile(file, "utf8");
  } catch (error) {
    throw new ConfigError(
      `${name}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
}

/** A PEM public key and the one algorithm its type allows. */
export function publicKeyOf(pem: string, name: string): BuyerJwtKey {
  let key;
  try {
    key = createPublicKey({ key: pem, format: "pem" });
  } catch {
    throw new ConfigError(`${name}: not a PEM public key`);
  }
  if (key.asymmetricKeyType === "rsa") {
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
      throw new ConfigError(`${name}: an RSA key must have at least 2048 bits`);
    }
    return {
      kind: "public-key",
      pem: key.export({ type: "spki", format: "pem" }).toString(),
      algorithms: ["RS256"],
    };
  }
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") {
    return {
      kind: "public-key",
      pem: key.export({ type: "spki", format: "pem" }).toString(),
      algorithms: ["ES256"],
    };
  }
  throw new ConfigError(`${name}: the key must be RSA (RS256) or EC P-256 (ES256)`);
}

/** A JWKS of public RSA and EC P-256 keys; a symmetric or private key in it is an error. */
export function jwksOf(text: string, name: string): BuyerJwtKey {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(`${name}: not JSON`);
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new ConfigError(`${name}: no "keys" array`);
  const algorithms = new Set<"RS256" | "ES256">();
  for (const key of keys as Record<string, unknown>[]) {
    if (typeof key !== "object" || key === null) throw new ConfigError(`${name}: a key is not an object`);
    if ("d" in key) throw new ConfigError(`${name}: holds a private key; give only the public keys`);
    if (key.kty === "RSA" && (key.alg === undefined || key.alg === "RS256")) algorithms.add("RS256");
    else if (key.kty === "EC" && key.crv === "P-256" && (key.alg === undefined || key.alg === "ES256")) {
      algorithms.add("ES256");
    } else {
      throw new ConfigError(`${name}: only RSA (RS256) and EC P-256 (ES256) public keys are accepted`);
    }
  }
  return { kind: "jwks", jwks: { keys: keys as Record<string, unknown>[] }, algorithms: [...algorithms] };
}
