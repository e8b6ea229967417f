import { parseArgs } from "node:util";
import { Value } from "@sinclair/typebox/value";
import type { TSchema } from "@sinclair/typebox";
import { ModelError } from "../model/errors.js";
import { HeadsSettingError } from "../model/heads/errors.js";
import { checkHeadsSetting } from "../model/heads/setting.js";
import { checkModelReference } from "../model/reference.js";
import type { DownloadSettings } from "../model/download/download.js";
import { readProxyEnvironment } from "../model/download/proxy.js";
import type { HubAccess } from "../model/resolve.js";
import { contradiction } from "./consistency.js";
import { configSchema, type RawConfig } from "./schema.js";

/** The settings after validation, with list-valued ones split. */
type DownloadKeys = "hfEndpoint" | "hfToken" | "hfHubOffline" | "downloadTimeoutMs" | "downloadStallTimeoutMs";

export interface Config extends Omit<RawConfig, "apiKey" | "corsOrigins" | DownloadKeys> {
  readonly apiKeys: readonly string[];
  /** HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE, as the model's and the heads' downloads take them. */
  readonly hub: HubAccess;
  /** DOWNLOAD_TIMEOUT_MS, DOWNLOAD_STALL_TIMEOUT_MS, and the proxy variables (HTTPS_PROXY, HTTP_PROXY, NO_PROXY). */
  readonly download: DownloadSettings;
  /** `true` allows any origin. */
  readonly corsOrigins: true | readonly string[];
}

/** A bad setting: its message is one line that names the variable, fit to print as it is. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

type Key = keyof RawConfig & string;

const keys = Object.keys(configSchema.properties) as Key[];

export function envName(key: Key): string {
  return key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
}

function flagName(key: Key): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function propertySchema(key: Key): TSchema & { cli?: string } {
  return configSchema.properties[key] as TSchema & { cli?: string };
}

function readArgv(argv: readonly string[]): Record<string, string> {
  const options: Record<string, { type: "string" }> = {};
  for (const key of keys) {
    options[flagName(key)] = { type: "string" };
    const alias = propertySchema(key).cli;
    if (alias) options[alias] = { type: "string" };
  }
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }) as {
      values: Record<string, string | undefined>;
    });
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  const result: Record<string, string> = {};
  for (const key of keys) {
    const alias = propertySchema(key).cli;
    const value = values[flagName(key)] ?? (alias ? values[alias] : undefined);
    if (value !== undefined) result[key] = value;
  }
  return result;
}

function describeExpected(schema: TSchema): string {
  if (schema.anyOf) return `one of ${schema.anyOf.map((s: TSchema) => s.const).join(", ")}`;
  const range =
    schema.minimum !== undefined || schema.maximum !== undefined
      ? ` in [${schema.minimum ?? "-inf"}, ${schema.maximum ?? "inf"}]`
      : "";
  if (schema.type === "integer") return `an integer${range}`;
  if (schema.type === "boolean") return "true or false";
  if (schema.pattern) return `a value matching ${schema.pattern}`;
  if (schema.minLength) return "a non-empty string";
  return `a ${schema.type}`;
}

function convert(key: Key, text: string, source: string): unknown {
  const schema = propertySchema(key);
  const trimmed = text.trim();
  const fail = (): never => {
    throw new ConfigError(`Invalid ${source}: expected ${describeExpected(schema)}, got ${JSON.stringify(text)}`);
  };
  let value: unknown = trimmed;
  if (schema.type === "integer") {
    if (!/^-?\d+$/.test(trimmed)) fail();
    value = Number(trimmed);
  } else if (schema.type === "boolean") {
    const lower = trimmed.toLowerCase();
    if (["true", "1", "yes", "on"].includes(lower)) value = true;
    else if (["false", "0", "no", "off", ""].includes(lower)) value = false;
    else fail();
  }
  if (!Value.Check(schema, value)) fail();
  return value;
}

function splitList(text: string): string[] {
  return text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

/** Runs a setting's own start-time check; its error (of `kind`) becomes a ConfigError naming the setting. */
function checkSetting(source: string, kind: new (message: string) => Error, check: () => string): string {
  try {
    return check();
  } catch (error) {
    if (error instanceof kind) throw new ConfigError(`Invalid ${source}: ${error.message}`);
    throw error;
  }
}

/**
 * Reads every setting from the environment, then the command line over it, and validates them once.
 * Throws ConfigError on the first bad value, or when values contradict each other.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  argv: readonly string[] = process.argv.slice(2),
): Config {
  const fromArgv = readArgv(argv);
  const raw: Record<string, unknown> = {};
  const sources = {} as Record<Key, string>;
  for (const key of keys) {
    const cliValue = fromArgv[key];
    const envValue = env[envName(key)] || undefined;
    sources[key] = cliValue !== undefined ? `--${flagName(key)}` : envName(key);
    const text = cliValue ?? envValue;
    raw[key] = text === undefined ? propertySchema(key).default : convert(key, text, sources[key]);
  }
  const config = raw as RawConfig;
  const conflict = contradiction(config);
  if (conflict) throw new ConfigError(conflict);
  const { apiKey, corsOrigins, hfEndpoint, hfToken, hfHubOffline, downloadTimeoutMs, downloadStallTimeoutMs, ...rest } = config;
  const origins = splitList(corsOrigins);
  return {
    ...rest,
    // EMBEDDING_MODEL as resolveModel takes it: a value only the seed project could load fails here
    embeddingModel: checkSetting(sources.embeddingModel, ModelError, () => checkModelReference(config.embeddingModel)),
    // M3_HEADS as prepareHeads takes it: a malformed value fails here, before anything is fetched
    m3Heads: checkSetting(sources.m3Heads, HeadsSettingError, () => checkHeadsSetting(config.m3Heads)),
    routePrefix: config.routePrefix.replace(/\/+$/, ""),
    apiKeys: splitList(apiKey),
    corsOrigins: origins.length === 0 || origins.includes("*") ? true : origins,
    hub: { endpoint: hfEndpoint, token: hfToken, offline: hfHubOffline },
    download: { timeoutMs: downloadTimeoutMs, stallTimeoutMs: downloadStallTimeoutMs, proxies: readProxyEnvironment(env) },
  };
}
