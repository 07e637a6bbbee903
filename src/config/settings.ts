/**
 * Settings that come from a command-line flag or an environment variable (the flag wins), each described
 * once in a table (flag, variable, default, parse with its bounds, description), so that a command's
 * options, its --help, its config loader and the type of its config cannot disagree. Every command
 * (`server`, `lb`, `up`) reads its settings this way. This folder is the only place that reads
 * process.env.
 */
import { ConfigError } from "../domain/errors.js";

export interface Setting<T> {
  /**
   * The long flag without dashes, e.g. "lock-wait-ms"; null for a setting read only from its variable
   * (a secret: a command line shows in `ps`).
   */
  flag: string | null;
  /** The environment variable, e.g. "BOXOFFICE_LOCK_WAIT_MS". */
  env: string;
  description: string;
  /** Shown in --help and used when neither flag nor variable is set ("" for none). */
  defaultText: string;
  /** The placeholder shown in --help, `--flag <valueName>`; "value" when absent. */
  valueName?: string;
  /** The flag may be given several times; its values reach `parse` joined by ",". */
  repeatable?: boolean;
  /** Turns the text into the value, or throws a ConfigError that names `name` (the flag or variable). */
  parse: (text: string, name: string) => T;
}

/** A command's settings, keyed by the name of the value in its config. */
export type SettingTable = Readonly<Record<string, Setting<unknown>>>;

/** The frozen config a table reads into: each key with the type its parse returns. */
export type SettingsOf<S extends SettingTable> = { readonly [K in keyof S]: ReturnType<S[K]["parse"]> };

/** Flag values as commander hands them over: keyed by camelCased flag name; repeatable ones as arrays. */
export type FlagValues = Readonly<Record<string, string | readonly string[] | undefined>>;

/** "lock-wait-ms" → "lockWaitMs", commander's key for the option. */
export function flagKey(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** Reads one setting: the flag, else the variable, else the default; says which one was wrong. */
export function readSetting<T>(setting: Setting<T>, flags: FlagValues, env: NodeJS.ProcessEnv): T {
  const fromFlag = setting.flag === null ? undefined : flags[flagKey(setting.flag)];
  if (fromFlag !== undefined) {
    return setting.parse(typeof fromFlag === "string" ? fromFlag : fromFlag.join(","), `--${setting.flag}`);
  }
  const fromEnv = env[setting.env];
  if (fromEnv !== undefined && fromEnv !== "") return setting.parse(fromEnv, setting.env);
  const where = setting.flag === null ? setting.env : `--${setting.flag}`;
  return setting.parse(setting.defaultText, `the default of ${where}`);
}

/** Reads every setting of a table (flags win over variables, which win over defaults), frozen. */
export function readSettings<S extends SettingTable>(
  table: S,
  flags: FlagValues,
  env: NodeJS.ProcessEnv,
): SettingsOf<S> {
  const values = Object.entries(table).map(([key, setting]) => [key, readSetting(setting, flags, env)]);
  return Object.freeze(Object.fromEntries(values)) as SettingsOf<S>;
}

export function text(): (value: string) => string {
  return (value) => value;
}

export function oneOf<T extends string>(...choices: T[]): (value: string, name: string) => T {
  return (value, name) => {
    if ((choices as string[]).includes(value)) return value as T;
    throw new ConfigError(`${name} must be one of ${choices.join(", ")}, not "${value}"`);
  };
}

export function wholeNumber(min: number, max: number): (value: string, name: string) => number {
  return (value, name) => {
    const number = /^\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(number) || number < min || number > max) {
      throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, not "${value}"`);
    }
    return number;
  };
}

/** Any finite number from `min` up, fractions included (the balancer's numeric options). */
export function numberFrom(min: number): (value: string, name: string) => number {
  return (value, name) => {
    const number = value.trim() === "" ? Number.NaN : Number(value.trim());
    if (!Number.isFinite(number) || number < min) {
      throw new ConfigError(`${name} must be a number >= ${min}, not "${value}"`);
    }
    return number;
  };
}

/** An OTLP/HTTP endpoint, http(s)://host:port[/path]; empty for none (tracing off). */
export function otelEndpoint(value: string, name: string): string | undefined {
  if (value === "") return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} must be an http:// or https:// URL, not "${value}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new ConfigError(`${name} must be an http:// or https:// URL, not "${value}"`);
  return value;
}

/** A TCP port to listen on; 0 picks a free one. The same for every command. */
export const listenPort = wholeNumber(0, 65535);

/** The process environment, for callers outside this folder that must not touch process.env. */
export function processEnv(): NodeJS.ProcessEnv {
  return process.env;
}
