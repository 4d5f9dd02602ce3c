// Counts failed logins per client IP and per account over a sliding window (limits.auth_failures_per_ip,
// limits.auth_failures_per_account, limits.auth_failure_window), shared by POP3 and, later, SMTP AUTH.
// While a key is over its limit a login is refused before any password is checked. An IP that logged
// in to an account within the window is not held back by that account's limit, so a guesser cannot
// lock its owner out. Memory is bounded: at most MAX_KEYS keys per table, oldest dropped first.
// IPv6 clients are counted per /64, the block one host or site usually gets.
import net from "node:net";

export interface ThrottleLimits {
  readonly perIp: number;
  readonly perAccount: number;
  readonly windowMs: number;
}

export type ThrottleVerdict = { readonly kind: "allowed" } | { readonly kind: "throttled"; readonly scope: "ip" | "account" };

const MAX_KEYS = 100_000;

/** Failure times per key; Map order is the order of each key's latest failure. */
class FailureLog {
  private readonly times = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  count(key: string, now: number): number {
    const t = this.times.get(key);
    if (!t) return 0;
    while (t.length && t[0]! <= now - this.windowMs) t.shift();
    if (t.length === 0) this.times.delete(key);
    return t.length;
  }

  add(key: string, now: number): void {
    const t = this.times.get(key) ?? [];
    this.times.delete(key);
    t.push(now);
    // Only the newest `limit` times matter for the verdict.
    if (t.length > this.limit) t.shift();
    this.times.set(key, t);
    this.sweep(now);
  }

  private sweep(now: number): void {
    for (const [key, t] of this.times) {
      const expired = t[t.length - 1]! <= now - this.windowMs;
      if (!expired && this.times.size <= MAX_KEYS) break;
      this.times.delete(key);
    }
  }
}

export class FailureThrottle {
  private readonly byIp: FailureLog;
  private readonly byAccount: FailureLog;
  /** "account\nip" of recent successful logins, value the time; Map order oldest first. */
  private readonly trusted = new Map<string, number>();

  constructor(
    private readonly limits: ThrottleLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.byIp = new FailureLog(limits.perIp, limits.windowMs);
    this.byAccount = new FailureLog(limits.perAccount, limits.windowMs);
  }

  check(peer: string, account: string): ThrottleVerdict {
    const ip = ipKey(peer);
    const now = this.now();
    if (this.byIp.count(ip, now) >= this.limits.perIp) return { kind: "throttled", scope: "ip" };
    if (this.byAccount.count(account, now) >= this.limits.perAccount && !this.isTrusted(ip, account, now))
      return { kind: "throttled", scope: "account" };
    return { kind: "allowed" };
  }

  failed(peer: string, account: string): void {
    const now = this.now();
    this.byIp.add(ipKey(peer), now);
    this.byAccount.add(account, now);
  }

  succeeded(peer: string, account: string): void {
    const now = this.now();
    const key = `${account}\n${ipKey(peer)}`;
    this.trusted.delete(key);
    this.trusted.set(key, now);
    for (const [k, t] of this.trusted) {
      if (t > now - this.limits.windowMs && this.trusted.size <= MAX_KEYS) break;
      this.trusted.delete(k);
    }
  }

  private isTrusted(ip: string, account: string, now: number): boolean {
    const t = this.trusted.get(`${account}\n${ip}`);
    return t !== undefined && t > now - this.limits.windowMs;
  }
}

/** The throttle key of a client address: IPv4 as is, IPv6 by its /64 prefix. */
export function ipKey(peer: string): string {
  if (!net.isIPv6(peer)) return peer;
  const [head = "", tail] = peer.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) counts as two groups; only the first four groups matter.
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups.slice(0, 4).map((g) => Number.parseInt(g, 16).toString(16)).join(":")}::/64`;
}
