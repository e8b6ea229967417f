import type { TSchema } from "@sinclair/typebox";
import { configSchema } from "./schema.js";
import { envName } from "./load.js";

/** `--help`: every setting with its environment variable, flag and default, from the schema. */
export function helpText(): string {
  const rows = Object.entries(configSchema.properties).map(([key, schema]) => {
    const property = schema as TSchema & { cli?: string };
    const flag = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}${property.cli ? `, --${property.cli}` : ""}`;
    const fallback = property.default === "" ? "(empty)" : JSON.stringify(property.default);
    return `  ${envName(key as never).padEnd(22)} ${flag.padEnd(34)} ${property.description} Default: ${fallback}.`;
  });
  return [
    "Usage: npm start -- [flags]  or  bge-m3-server [flags]   (every flag is also an environment variable)",
    "",
    ...rows,
    "",
    "Downloads honour HTTPS_PROXY, HTTP_PROXY and NO_PROXY (or their lower-case forms) as curl does; NODE_EXTRA_CA_CERTS adds",
    "the CA of a TLS-inspecting proxy. CUDA_LAUNCH_BLOCKING is passed through to the engine.",
  ].join("\n");
}
