import { BlockList, isIP } from "node:net";

/**
 * The proxy variables as curl and the Hugging Face tools read them: the lower-case name wins over the
 * upper-case one; each value is kept as given and parsed when a download needs it.
 */
export interface ProxyEnvironment {
  readonly httpsProxy: string;
  readonly httpProxy: string;
  readonly noProxy: string;
}

export const NO_PROXIES: ProxyEnvironment = { httpsProxy: "", httpProxy: "", noProxy: "" };

const pick = (env: NodeJS.ProcessEnv, name: string): string => (env[name.toLowerCase()] || env[name] || "").trim();

export function readProxyEnvironment(env: NodeJS.ProcessEnv): ProxyEnvironment {
  return { httpsProxy: pick(env, "HTTPS_PROXY"), httpProxy: pick(env, "HTTP_PROXY"), noProxy: pick(env, "NO_PROXY") };
}

/** A proxy variable we cannot use: the message names it and the form it needs. */
export class ProxySettingError extends Error {
  override name = "ProxySettingError";
}

/** The proxy URL without its password, for log lines. */
export function proxyLabel(proxy: URL): string {
  return `${proxy.protocol}//${proxy.username ? `${decodeURIComponent(proxy.username)}:***@` : ""}${proxy.host}`;
}

function parseProxy(name: string, value: string): URL {
  // curl takes host:port without a scheme as an http proxy
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ProxySettingError(`${name}=${value} is not a URL: expected http://[user:password@]host:port`);
  }
  if (url.protocol !== "http:") {
    throw new ProxySettingError(`${name}=${proxyLabel(url)}: only http:// proxies are supported (https:// downloads go through them with CONNECT)`);
  }
  return url;
}

/** Whether NO_PROXY names `url`'s host: `*`, a host or domain suffix (`.example.com` or `example.com`, optionally `:port`), an IP or CIDR. */
function bypassed(url: URL, noProxy: string): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  for (const raw of noProxy.split(/[\s,]+/).filter(Boolean)) {
    const entry = raw.toLowerCase();
    if (entry === "*") return true;
    const cidr = /^([\d.]+|[\da-f:]+)\/(\d{1,3})$/.exec(entry);
    if (cidr && isIP(host) && isIP(cidr[1]) === isIP(host)) {
      const list = new BlockList();
      const family = isIP(host) === 4 ? "ipv4" : "ipv6";
      list.addSubnet(cidr[1], Number(cidr[2]), family);
      if (list.check(host, family)) return true;
      continue;
    }
    // host:port, [v6]:port; a bare IPv6 address has colons of its own
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
    const [name, entryPort] = bracketed ? [bracketed[1], bracketed[2]] : entry.split(":").length === 2 ? entry.split(":") : [entry, undefined];
    if (entryPort && entryPort !== port) continue;
    const domain = name.replace(/^\*?\./, "");
    if (host === domain || host.endsWith(`.${domain}`)) return true;
  }
  return false;
}

/** The proxy a request to `url` goes through (HTTPS_PROXY for https, HTTP_PROXY for http, unless NO_PROXY names the host), or undefined. */
export function proxyFor(url: URL, env: ProxyEnvironment): URL | undefined {
  const [name, value] = url.protocol === "https:" ? ["HTTPS_PROXY", env.httpsProxy] : ["HTTP_PROXY", env.httpProxy];
  if (!value || bypassed(url, env.noProxy)) return undefined;
  return parseProxy(name, value);
}
