// Forward-confirmed reverse DNS of an SMTP client (FCrDNS; "iprev", RFC 8601 §3): the PTR names of its IP
// (RFC 1035 §3.5, in-addr.arpa / ip6.arpa), then the A or AAAA records of each name; the first name whose
// addresses contain the IP is confirmed. Every query goes to [dns] servers; the whole check is bounded
// in time and a failure, timeout or missing PTR is "none", never an error. Trusts DNS answers only as
// names: one that is not a syntactically valid host name is ignored (it would end up in Received).
import net from "node:net";
import type { ClientName } from "../spool/trace-headers.js";
import { AnswerCache } from "../core/answer-cache.js";
import { createDnsLookup, type DnsLookup } from "../trust/dns-lookup.js";

export interface ReverseDnsOptions {
  /** `[dns] servers`: "ip", "ip:port", "[v6]:port"; empty means the system's resolvers. */
  readonly servers: readonly string[];
  /** The whole check (PTR and forward lookups) gives up after this long: "none". */
  readonly timeoutMs?: number;
  /** c-ares' per-query timeout and attempts per server. */
  readonly queryTimeoutMs?: number;
  readonly tries?: number;
}

/** PTR names tried at most (an IP with dozens of PTR records gets no more lookups than this). */
const MAX_NAMES = 4;
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$/i;

/** How long an answer is reused for the same IP, and how many IPs are remembered (as the DNSBL cache). */
const CACHE_MS = 5 * 60_000;
const CACHE_MAX = 10_000;

export class ReverseDns {
  private readonly dns: DnsLookup;
  private readonly timeoutMs: number;
  /**
   * Answers by IP: concurrent connections from one address share one lookup, and a client reconnecting
   * in a loop costs DNS one lookup per CACHE_MS. A lookup that ended in "none" is not kept (it may have
   * been a timeout), but concurrent callers still share it.
   */
  private readonly cache: AnswerCache<ClientName>;

  constructor(opts: ReverseDnsOptions, dns?: DnsLookup, now: () => number = Date.now) {
    this.dns = dns ?? createDnsLookup({ servers: opts.servers, timeoutMs: opts.queryTimeoutMs ?? 2000, tries: opts.tries ?? 2 });
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.cache = new AnswerCache(CACHE_MS, CACHE_MAX, now);
  }

  /** The names or addresses of one lookup; none on any error (the check is advisory). */
  private async strings(name: string, rrtype: "PTR" | "A" | "AAAA"): Promise<string[]> {
    try {
      return (await this.dns(name, rrtype)).filter((v): v is string => typeof v === "string");
    } catch {
      return [];
    }
  }

  /** What the client's IP says it is; resolves within timeoutMs, never rejects. */
  lookup(ip: string): Promise<ClientName> {
    return this.cache.get(ip, () => this.lookupNow(ip), (name) => name.kind !== "none");
  }

  private async lookupNow(ip: string): Promise<ClientName> {
    const family = net.isIP(ip);
    if (family === 0) return { kind: "none" };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<ClientName>((resolve) => {
      timer = setTimeout(() => resolve({ kind: "none" }), this.timeoutMs);
      timer.unref();
    });
    try {
      return await Promise.race([this.check(ip, family === 6 ? "ipv6" : "ipv4"), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async check(ip: string, family: "ipv4" | "ipv6"): Promise<ClientName> {
    // A PTR query, not Resolver.reverse(): that one answers from /etc/hosts first, and every lookup must go to [dns] servers.
    const names = await this.strings(arpaName(ip, family), "PTR");
    const valid = [...new Set(names.map((n) => n.toLowerCase().replace(/\.$/, "")))].filter((n) => HOST_NAME.test(n)).slice(0, MAX_NAMES);
    if (valid.length === 0) return { kind: "none" };
    const self = new net.BlockList();
    self.addAddress(ip, family);
    const confirmed = await Promise.all(
      valid.map(async (name) => {
        const addresses = await this.strings(name, family === "ipv6" ? "AAAA" : "A");
        return addresses.some((a) => net.isIP(a) !== 0 && self.check(a, family));
      }),
    );
    const at = confirmed.indexOf(true);
    return at >= 0 ? { kind: "confirmed", name: valid[at]! } : { kind: "unconfirmed", name: valid[0]! };
  }
}

/** The reverse-mapping name of an IP: "7.2.0.192.in-addr.arpa" (RFC 1035 §3.5), nibbles in "ip6.arpa" (RFC 3596 §2.5). */
export function arpaName(ip: string, family: "ipv4" | "ipv6"): string {
  if (family === "ipv4") return `${ip.split(".").reverse().join(".")}.in-addr.arpa`;
  return `${[...expandIpv6(ip)].reverse().join(".")}.ip6.arpa`;
}

/** The 32 hex digits of an IPv6 address (an embedded IPv4 tail included). */
function expandIpv6(ip: string): string {
  let text = ip.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const o = v4[1]!.split(".").map(Number);
    text = text.slice(0, v4.index) + `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return groups.map((g) => g.padStart(4, "0")).join("");
}
