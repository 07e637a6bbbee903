/**
 * Settings that come from a command-line flag or an environment variable (the flag wins), described
 * once in a table so that the CLI's options and the config loader cannot disagree. This folder is the
 * only place that reads process.env.
 */
import { BoxofficeError } from "../domain/errors.js";

export class ConfigError extends BoxofficeError {
  constructor(message: string) {
    super("INVALID_CONFIG", message);
  }
}

export interface Setting<T> {
  /** The long flag without dashes, e.g. "lock-wait-ms". */
  flag: string;
  /** The environment variable, e.g. "BOXOFFICE_LOCK_WAIT_MS". */
  env: string;
  description: string;
  /** Shown in --help and used when neither flag nor variable is set. */
  defaultText: string;
  parse: (text: string, name: string) => T;
}

/** Flag values as commander hands them over: keyed by camelCased flag name. */
export type FlagValues = Readonly<Record<string, string | undefined>>;

/** "lock-wait-ms" → "lockWaitMs", commander's key for the option. */
export function flagKey(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** Reads one setting: the flag, else the variable, else the default; says which one was wrong. */
export function readSetting<T>(setting: Setting<T>, flags: FlagValues, env: NodeJS.ProcessEnv): T {
  const fromFlag = flags[flagKey(setting.flag)];
  if (fromFlag !== undefined) return setting.parse(fromFlag, `--${setting.flag}`);
  const fromEnv = env[setting.env];
  if (fromEnv !== undefined && fromEnv !== "") return setting.parse(fromEnv, setting.env);
  return setting.parse(setting.defaultText, `the default of --${setting.flag}`);
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

/** The process environment, for callers outside this folder that must not touch process.env. */
export function processEnv(): NodeJS.ProcessEnv {
  return process.env;
}
