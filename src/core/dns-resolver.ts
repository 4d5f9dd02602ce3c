// The one way Petrel builds a DNS resolver: node:dns/promises' Resolver (c-ares) sending every query to
// the configured `[dns] servers` (empty: the system's resolvers). Used by MX routing, the smarthost's
// lookup, the DNS lists, reverse DNS and the authentication checks, so tests can point them all at a
// loopback DNS server. Timeouts and tries are the caller's: the defaults give up after about 6 s.
import { Resolver } from "node:dns/promises";

export interface ResolverOptions {
  /** `[dns] servers`: "ip", "ip:port", "[v6]:port"; empty means the system's resolvers. */
  readonly servers: readonly string[];
  /** c-ares' first per-query timeout in ms (default 2500) and attempts per server (default 2). */
  readonly timeoutMs?: number;
  readonly tries?: number;
}

export function makeResolver(opts: ResolverOptions): Resolver {
  const r = new Resolver({ timeout: opts.timeoutMs ?? 2500, tries: opts.tries ?? 2 });
  if (opts.servers.length > 0) r.setServers([...opts.servers]);
  return r;
}
