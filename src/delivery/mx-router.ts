// Decides where mail for one domain goes (RFC 5321 §5.1): MX hosts in preference order (equal ones shuffled),
// each with its IPv6 and IPv4 addresses; implicit MX (the domain's own A/AAAA) when there is no MX; null MX
// (RFC 7505 §3), NXDOMAIN and mail looping back to this host bounced; DNS failures deferred. Trusts the DNS
// answers only as far as their syntax: names are compared lowercase, addresses checked by node:net.
import net from "node:net";
import { makeResolver } from "../core/dns-resolver.js";
import { isAscii } from "../core/address.js";

export interface MxHost {
  readonly host: string;
  readonly preference: number;
  /** IPv6 and IPv4 addresses, in the order to try: interleaved, IPv6 first (RFC 8305 §4). */
  readonly addresses: readonly string[];
}

export type Route =
  /** Hosts in the order to try; `implicit` when there was no MX (the domain itself, or an address literal). */
  | { kind: "hosts"; hosts: readonly MxHost[]; implicit: boolean }
  /** 5.1.10 null MX, 5.1.2 no such domain, 5.4.6 routing loop to ourselves, 5.4.4 no address at all. */
  | { kind: "bounce"; status: "5.1.10" | "5.1.2" | "5.4.6" | "5.4.4"; reason: string }
  /** SERVFAIL, timeout, refused: try again later. */
  | { kind: "defer"; status: "4.4.3"; reason: string };

/** The part of node:dns/promises' Resolver the router uses; tests may hand in their own. */
export interface ResolverLike {
  resolveMx(name: string): Promise<{ exchange: string; priority: number }[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
}

export interface MxRouterOptions {
  /** `[dns] servers`: "ip", "ip:port", "[v6]:port"; empty means the system's resolvers. */
  readonly servers: readonly string[];
  /** c-ares' per-query timeout (default 2500 ms) and attempts per server (default 2). c-ares stretches its
   *  waits: measured, one unanswered lookup fails after ~6 s with 2500/2, ~16 s with 5000/2. */
  readonly timeoutMs?: number;
  readonly tries?: number;
  /** This host: its names and IP addresses. An MX naming one of them, or resolving to one, is us. */
  readonly localNames: readonly string[];
  /** Domains we deliver locally; the loop check does not apply to them. */
  readonly localDomains: readonly string[];
  /** Random source in [0, 1) for shuffling equal preferences; Math.random by default. */
  readonly random?: () => number;
}

type Lookup<T> = { kind: "found"; value: T } | { kind: "none"; nxdomain: boolean } | { kind: "temporary"; reason: string };

interface Candidate {
  readonly host: string;
  readonly preference: number;
  readonly addresses: readonly string[];
  /** Why the address lookup failed for a while, when it did. */
  readonly temporary: string | undefined;
}

export class MxRouter {
  private readonly resolver: ResolverLike;
  private readonly random: () => number;
  private readonly localNames: ReadonlySet<string>;
  private readonly localAddresses = new net.BlockList();
  private readonly localDomains: ReadonlySet<string>;

  constructor(opts: MxRouterOptions, resolver?: ResolverLike) {
    this.resolver = resolver ?? makeResolver(opts);
    this.random = opts.random ?? Math.random;
    const names = new Set<string>();
    for (const n of opts.localNames) {
      const version = net.isIP(n);
      if (version === 0) names.add(hostKey(n));
      else this.localAddresses.addAddress(n, version === 6 ? "ipv6" : "ipv4");
    }
    this.localNames = names;
    this.localDomains = new Set(opts.localDomains.map(hostKey));
  }

  async route(domain: string): Promise<Route> {
    if (!isAscii(domain)) throw new TypeError(`Cannot route ${domain}: the domain must be ASCII (A-labels)`);
    const name = hostKey(domain);
    if (name.startsWith("[")) return this.literal(name);

    const mx = await lookup(() => this.resolver.resolveMx(name));
    if (mx.kind === "temporary") return defer(`DNS lookup of MX for ${name} failed: ${mx.reason}`);
    if (mx.kind === "none" && mx.nxdomain) return { kind: "bounce", status: "5.1.2", reason: `Domain ${name} does not exist (NXDOMAIN)` };
    const records = mx.kind === "found" ? mx.value : [];
    if (records.length === 0) return this.implicit(name);
    // RFC 7505 §3: a single MX with the root as target, preference 0. c-ares reports the root as "".
    const real = records.filter((r) => hostKey(r.exchange) !== "");
    if (real.length === 0) return { kind: "bounce", status: "5.1.10", reason: `Domain ${name} accepts no mail (null MX, RFC 7505)` };

    const ordered = this.order(real);
    const candidates = await Promise.all(ordered.map((r) => this.candidate(r.host, r.preference)));
    const self = candidates.filter((c) => this.isSelf(c));
    let usable = candidates;
    if (self.length > 0 && !this.localDomains.has(name)) {
      // RFC 5321 §5.1: drop every MX as preferred as ours or less; if none is more preferred, it is a loop.
      const ours = Math.min(...self.map((c) => c.preference));
      usable = candidates.filter((c) => c.preference < ours);
      if (usable.length === 0) return loop(name);
    }
    const hosts = usable.filter((c) => c.addresses.length > 0);
    if (hosts.length > 0) return { kind: "hosts", hosts: hosts.map(mxHost), implicit: false };
    const failed = usable.find((c) => c.temporary !== undefined);
    if (failed) return defer(`DNS lookup of address of ${failed.host} (MX for ${name}) failed: ${failed.temporary}`);
    return { kind: "bounce", status: "5.4.4", reason: `No address for any MX host of ${name} (${usable.map((c) => c.host).join(", ")})` };
  }

  /** RFC 5321 §5.1: no MX records, so the domain itself is the host, as if MX 0. */
  private async implicit(name: string): Promise<Route> {
    const c = await this.candidate(name, 0);
    if (this.isSelf(c) && !this.localDomains.has(name)) return loop(name);
    if (c.addresses.length > 0) return { kind: "hosts", hosts: [mxHost(c)], implicit: true };
    if (c.temporary !== undefined) return defer(`DNS lookup of address of ${name} failed: ${c.temporary}`);
    return { kind: "bounce", status: "5.4.4", reason: `Domain ${name} has no MX and no address` };
  }

  /** RFC 5321 §4.1.3: "[192.0.2.1]" and "[IPv6:2001:db8::1]" name the host directly. */
  private literal(name: string): Route {
    const inner = name.slice(1, -1);
    const ip = inner.startsWith("ipv6:") ? inner.slice(5) : inner;
    const valid = inner.startsWith("ipv6:") ? net.isIPv6(ip) : net.isIPv4(ip);
    if (!name.endsWith("]") || !valid) return { kind: "bounce", status: "5.1.2", reason: `Cannot route to address literal ${name}` };
    const c: Candidate = { host: name, preference: 0, addresses: [ip], temporary: undefined };
    if (this.isSelf(c) && !this.localDomains.has(name)) return loop(name);
    return { kind: "hosts", hosts: [mxHost(c)], implicit: true };
  }

  /** Preference order; one entry per host (its best preference); equal preferences shuffled. */
  private order(records: readonly { exchange: string; priority: number }[]): { host: string; preference: number }[] {
    const best = new Map<string, number>();
    for (const r of records) {
      const host = hostKey(r.exchange);
      best.set(host, Math.min(best.get(host) ?? Infinity, r.priority));
    }
    const byPreference = new Map<number, string[]>();
    for (const [host, preference] of best) byPreference.set(preference, [...(byPreference.get(preference) ?? []), host]);
    return [...byPreference.keys()]
      .sort((a, b) => a - b)
      .flatMap((preference) => this.shuffle(byPreference.get(preference)!).map((host) => ({ host, preference })));
  }

  private shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }

  /** Both families are asked at once; a CNAME is followed by the resolver (c-ares reads the chain in the answer). */
  private async candidate(host: string, preference: number): Promise<Candidate> {
    const [v6, v4] = await Promise.all([lookup(() => this.resolver.resolve6(host)), lookup(() => this.resolver.resolve4(host))]);
    const six = v6.kind === "found" ? v6.value.filter((a) => net.isIPv6(a)) : [];
    const four = v4.kind === "found" ? v4.value.filter((a) => net.isIPv4(a)) : [];
    const addresses: string[] = [];
    for (let i = 0; i < Math.max(six.length, four.length); i++) {
      if (i < six.length) addresses.push(six[i]!);
      if (i < four.length) addresses.push(four[i]!);
    }
    const failure = [v6, v4].find((l) => l.kind === "temporary");
    return { host, preference, addresses: [...new Set(addresses)], temporary: failure?.kind === "temporary" ? failure.reason : undefined };
  }

  private isSelf(c: Candidate): boolean {
    if (this.localNames.has(c.host)) return true;
    return c.addresses.some((a) => this.localAddresses.check(a, net.isIPv6(a) ? "ipv6" : "ipv4"));
  }
}

/** Host names compare lowercase and without the final dot. */
function hostKey(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}

function mxHost(c: Candidate): MxHost {
  return { host: c.host, preference: c.preference, addresses: c.addresses };
}

function defer(reason: string): Route {
  return { kind: "defer", status: "4.4.3", reason };
}

function loop(name: string): Route {
  return { kind: "bounce", status: "5.4.6", reason: `mail for ${name} loops back to myself` };
}

/** c-ares error codes: NODATA and NXDOMAIN (ENOTFOUND) are answers; anything else (SERVFAIL, timeout, refused, a bad reply) may pass. */
async function lookup<T>(ask: () => Promise<T>): Promise<Lookup<T>> {
  try {
    return { kind: "found", value: await ask() };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENODATA") return { kind: "none", nxdomain: false };
    if (code === "ENOTFOUND") return { kind: "none", nxdomain: true };
    return { kind: "temporary", reason: code ?? String(err) };
  }
}
