// The DNS lookup function the authentication checks (mailauth) use: every query goes to the configured
// `[dns] servers` through one node:dns/promises Resolver (c-ares), like the MX router's. Trusts the answers
// only as far as c-ares parses them; mailauth checks what the records say. Errors keep c-ares' codes
// (ENOTFOUND, ENODATA: no record; ETIMEOUT, ESERVFAIL, ECONNREFUSED: temporary), which mailauth maps.
import { makeResolver } from "../core/dns-resolver.js";
import type { DNSResolver } from "mailauth";

/** mailauth's resolver: `(name, rrtype)` answered as node:dns `resolve(name, rrtype)` answers it. */
export type DnsLookup = DNSResolver;

export interface DnsLookupOptions {
  /** `[dns] servers`: "ip", "ip:port", "[v6]:port"; empty means the system's resolvers. */
  readonly servers: readonly string[];
  /** c-ares' first per-query timeout in ms and attempts per server (defaults as the MX router: 2500, 2). */
  readonly timeoutMs?: number;
  readonly tries?: number;
}

export function createDnsLookup(opts: DnsLookupOptions): DnsLookup {
  const r = makeResolver(opts);
  return async (name, rrtype) => {
    switch (rrtype) {
      case "A":
        return r.resolve4(name);
      case "AAAA":
        return r.resolve6(name);
      case "TXT":
        return r.resolveTxt(name);
      case "MX":
        // mailauth's type says strings, but it reads MX answers as node:dns gives them ({ exchange, priority }).
        return (await r.resolveMx(name)) as unknown as string[];
      case "PTR":
        return r.resolvePtr(name);
      case "CNAME":
        return r.resolveCname(name);
      default:
        // mailauth asks only for the types above; anything else is a programming mistake, not a DNS answer.
        throw Object.assign(new Error(`Cannot look up DNS type ${rrtype}`), { code: "ENOTIMP" });
    }
  };
}
