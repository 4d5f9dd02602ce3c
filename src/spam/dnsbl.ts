// Screens an SMTP client at connect against DNS allow- and blocklists (RFC 5782): the reversed IPv4 octets
// or IPv6 nibbles under each zone, A lookups through `[dns] servers`, all zones at once (as Postfix's
// postscreen does, while the greeting waits). Listed = an answer in 127.0.0.0/24 (allowlists: 127.0.0.0/16);
// a TXT record gives the reason for the 554. NXDOMAIN, timeouts and other answers (Spamhaus' 127.255.255.x error
// codes, a resolver that rewrites NXDOMAIN) count as not listed and are logged. Trusts the answers' syntax only.
import net from "node:net";
import { AnswerCache } from "../core/answer-cache.js";
import { makeResolver } from "../core/dns-resolver.js";
import type { Logger } from "../core/log.js";
import { reply, type Reply } from "../core/reply.js";
import { printable } from "../protocol/wire-text.js";

/** The lookups the screen makes; node's Resolver in production, a stub in tests if needed. */
export interface DnsblResolver {
  resolve4(name: string): Promise<string[]>;
  resolveTxt(name: string): Promise<string[][]>;
}

export interface DnsblOptions {
  /** `[spam] dnsbl`: blocklist zones, in the order their listings are reported. */
  readonly blocklists: readonly string[];
  /** `[spam] dnswl`: allowlist zones; a client listed in one skips the blocklists and greylisting. */
  readonly allowlists: readonly string[];
  /** `[spam] exempt_networks`: clients that are not looked up at all. */
  readonly exempt: net.BlockList;
  /** `[spam] dnsbl_timeout`: how long the lookups of one client may take together. */
  readonly timeoutMs: number;
  /** `[dns] servers`; empty: the system's resolvers. Ignored when a resolver is given. */
  readonly servers: readonly string[];
  readonly log: Logger;
  /** The clock for the answer cache, in ms (tests move it). */
  readonly now?: () => number;
}

/** What the screen found; the session refuses `listed` and skips greylisting for `exempt` and `allowlisted`. */
export type ClientScreening =
  | { readonly kind: "exempt" }
  | { readonly kind: "allowlisted"; readonly zone: string }
  | { readonly kind: "clean" }
  | { readonly kind: "listed"; readonly zone: string; readonly reply: Reply };

/** The session's view: who is this client? Never rejects. */
export interface ClientScreen {
  screen(ip: string): Promise<ClientScreening>;
}

/** Longest TXT reason echoed in the 554 (Postfix's reply, with a bounded explanation). */
const MAX_REASON = 200;
/**
 * Answers are kept this long per client address (postscreen keeps them up to an hour), so a bot opening
 * connection after connection costs one lookup per list, not one per connection; failed lookups are not kept.
 */
export const SCREEN_CACHE_MS = 5 * 60 * 1000;
const SCREEN_CACHE_SIZE = 10_000;

type Lookup = { readonly kind: "listed"; readonly codes: readonly string[] } | { readonly kind: "not-listed" } | { readonly kind: "failed"; readonly reason: string };

export class Dnsbl implements ClientScreen {
  private readonly resolver: DnsblResolver;
  /** Client address → screening, kept when every list answered; bounded, oldest first. */
  private readonly cache: AnswerCache<{ result: ClientScreening; complete: boolean }>;

  constructor(
    private readonly opts: DnsblOptions,
    resolver?: DnsblResolver,
  ) {
    this.cache = new AnswerCache(SCREEN_CACHE_MS, SCREEN_CACHE_SIZE, opts.now ?? Date.now);
    // One try per server within the budget; the deadline below bounds the whole screen anyway.
    this.resolver = resolver ?? makeResolver({ servers: opts.servers, timeoutMs: Math.max(100, Math.min(opts.timeoutMs, 2000)), tries: 1 });
  }

  async screen(ip: string): Promise<ClientScreening> {
    const version = net.isIP(ip);
    if (version === 0) return { kind: "clean" };
    if (this.opts.exempt.check(ip, version === 6 ? "ipv6" : "ipv4")) return { kind: "exempt" };
    const { blocklists, allowlists } = this.opts;
    if (blocklists.length === 0 && allowlists.length === 0) return { kind: "clean" };
    return (await this.cache.get(ip, () => this.lookUp(ip), (r) => r.complete)).result;
  }

  /** Asks every list; `complete` when every list answered (only then is the result worth keeping). */
  private async lookUp(ip: string): Promise<{ result: ClientScreening; complete: boolean }> {
    const { blocklists, allowlists } = this.opts;
    const key = reversedName(ip);
    const deadline = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), this.opts.timeoutMs).unref());
    const ask = (list: "dnswl" | "dnsbl") => (zone: string): Promise<Lookup> =>
      Promise.race([this.lookup(`${key}.${zone}`, list), deadline.then((): Lookup => ({ kind: "failed", reason: "timeout" }))]);
    // Every zone at once: the slowest list, not the sum, is what the client waits for.
    const [allowed, blocked] = await Promise.all([Promise.all(allowlists.map(ask("dnswl"))), Promise.all(blocklists.map(ask("dnsbl")))]);
    const report = (zone: string, r: Lookup, list: "dnswl" | "dnsbl") => {
      if (r.kind === "failed") this.opts.log.warn({ peer: ip, zone, list, reason: r.reason }, "DNS list lookup failed: client not treated as listed");
    };
    allowed.forEach((r, i) => report(allowlists[i]!, r, "dnswl"));
    blocked.forEach((r, i) => report(blocklists[i]!, r, "dnsbl"));
    const complete = ![...allowed, ...blocked].some((r) => r.kind === "failed");
    const allowIndex = allowed.findIndex((r) => r.kind === "listed");
    if (allowIndex >= 0) {
      const zone = allowlists[allowIndex]!;
      this.opts.log.info({ peer: ip, zone }, "client on a DNS allowlist");
      return { result: { kind: "allowlisted", zone }, complete };
    }
    const blockIndex = blocked.findIndex((r) => r.kind === "listed");
    if (blockIndex < 0) return { result: { kind: "clean" }, complete };
    const zone = blocklists[blockIndex]!;
    const hit = blocked[blockIndex] as Extract<Lookup, { kind: "listed" }>;
    const reason = await Promise.race([this.reason(`${key}.${zone}`), deadline.then(() => null)]);
    const text = `Service unavailable; client [${ip}] blocked using ${zone}${reason ? `; ${reason}` : ""}`;
    this.opts.log.info({ peer: ip, zone, codes: hit.codes, reason }, "client on a DNS blocklist");
    return { result: { kind: "listed", zone, reply: reply(554, "5.7.1", text) }, complete };
  }

  private async lookup(name: string, list: "dnswl" | "dnsbl"): Promise<Lookup> {
    let answers: string[];
    try {
      answers = await this.resolver.resolve4(name);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOTFOUND is NXDOMAIN, ENODATA a name without A records: both mean "not listed".
      if (code === "ENOTFOUND" || code === "ENODATA") return { kind: "not-listed" };
      return { kind: "failed", reason: code === "ETIMEOUT" ? "timeout" : (code ?? "error") };
    }
    const codes = answers.filter((a) => isListing(a, list));
    if (codes.length > 0) return { kind: "listed", codes };
    return { kind: "failed", reason: `unexpected answer ${answers.slice(0, 4).join(",")} (an error code of the list, or a resolver rewriting NXDOMAIN)` };
  }

  /** The TXT explanation, made printable and short; null when there is none. */
  private async reason(name: string): Promise<string | null> {
    try {
      const records = await this.resolver.resolveTxt(name);
      const text = records.map((strings) => strings.join("")).join(" ").replace(/\s+/g, " ").trim();
      return text === "" ? null : printable(text, MAX_REASON);
    } catch {
      return null;
    }
  }
}

/**
 * A blocklist lists with 127.0.0.x (RFC 5782 §2.3: 127.0.0.2 usually, other values as the list's codes);
 * an allowlist (dnswl.org) with 127.0.X.Y, X its category, except 127.0.0.255, its "over the limit" answer.
 */
function isListing(answer: string, list: "dnswl" | "dnsbl"): boolean {
  if (list === "dnsbl") return answer.startsWith("127.0.0.");
  return answer.startsWith("127.0.") && answer !== "127.0.0.255";
}

/** The DNSxL key of an address (RFC 5782 §2.1, §2.4): "2.0.0.127", or 32 reversed nibbles for IPv6. */
export function reversedName(ip: string): string {
  if (net.isIPv4(ip)) return ip.split(".").reverse().join(".");
  if (!net.isIPv6(ip)) throw new TypeError(`Cannot reverse ${ip}: not an IP address`);
  return expandIpv6(ip).replace(/:/g, "").split("").reverse().join(".");
}

/** Eight groups of four hex digits, lowercase ("2001:db8::1" → "2001:0db8:0000:...:0001"). */
export function expandIpv6(ip: string): string {
  let text = ip.toLowerCase();
  // A trailing dotted IPv4 part becomes two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = text.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return groups.map((g) => g.padStart(4, "0")).join(":");
}
