// Checks login credentials for SMTP AUTH and POP3: the failure throttle first, then the password in
// the hash worker or the APOP digest (RFC 1939 §7). A password that matched recently is recognised
// without scrypt (a success cache, like Dovecot's auth_cache): clients that log in every minute cost
// microseconds, while every guess still pays the full hash. Trusts the store; trusts nothing the
// client sent. Account names are keyed ASCII-lowercase, so no Unicode case mapping reaches an account.
import crypto from "node:crypto";
import { foldCase } from "../core/address.js";
import { checkApopDigest } from "./apop.js";
import type { FailureThrottle } from "./failure-throttle.js";
import type { PasswordVerifier } from "./hash-pool.js";

export interface Credentials {
  passwordHash(address: string): string | null;
  apopSecret(address: string): string | null;
}

/** The account name is canonical (ASCII-lowercase) in every result. */
export type LoginResult =
  | { readonly kind: "ok"; readonly user: string }
  | { readonly kind: "failed"; readonly user: string }
  /** Too many recent failures from this IP or for this account: refused without checking. */
  | { readonly kind: "throttled"; readonly user: string; readonly scope: "ip" | "account" }
  /** The hash worker's queue is full: refused without checking; try again later. */
  | { readonly kind: "busy"; readonly user: string };

/** How long a verified password is recognised without scrypt, and for how many accounts at most. */
export const SUCCESS_CACHE_MS = 10 * 60_000;
export const SUCCESS_CACHE_SIZE = 10_000;

interface Remembered {
  /** The stored hash the password matched: a password change (a new hash) ends the entry. */
  readonly hash: string;
  /** HMAC of the password under a key that lives only in this process. */
  readonly mac: Buffer;
  readonly until: number;
}

export class Authenticator {
  /** Recently verified passwords by account, oldest first (a Map keeps insertion order). */
  private readonly verified = new Map<string, Remembered>();
  private readonly macKey = crypto.randomBytes(32);

  constructor(
    private readonly credentials: Credentials,
    private readonly verifier: PasswordVerifier,
    private readonly throttle: FailureThrottle,
    private readonly now: () => number = Date.now,
  ) {}

  async password(peer: string, name: string, password: string): Promise<LoginResult> {
    const user = foldCase(name);
    const verdict = this.throttle.check(peer, user);
    if (verdict.kind === "throttled") return { kind: "throttled", user, scope: verdict.scope };
    const hash = this.credentials.passwordHash(user);
    const mac = crypto.createHmac("sha256", this.macKey).update(password).digest();
    if (hash !== null && this.remembers(user, hash, mac)) return this.settle(peer, user, true);
    const r = await this.verifier.verify(password, hash);
    if (r === "busy") return { kind: "busy", user };
    if (r === "match" && hash !== null) this.remember(user, { hash, mac, until: this.now() + SUCCESS_CACHE_MS });
    return this.settle(peer, user, r === "match");
  }

  private remembers(user: string, hash: string, mac: Buffer): boolean {
    const r = this.verified.get(user);
    if (!r) return false;
    if (r.until <= this.now() || r.hash !== hash) {
      this.verified.delete(user);
      return false;
    }
    return crypto.timingSafeEqual(r.mac, mac);
  }

  private remember(user: string, entry: Remembered): void {
    this.verified.delete(user);
    this.verified.set(user, entry);
    if (this.verified.size > SUCCESS_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value!);
  }

  apop(peer: string, name: string, timestamp: string, digest: string): LoginResult {
    const user = foldCase(name);
    const verdict = this.throttle.check(peer, user);
    if (verdict.kind === "throttled") return { kind: "throttled", user, scope: verdict.scope };
    const secret = this.credentials.apopSecret(user);
    // Users without an APOP secret fail exactly like a wrong digest.
    return this.settle(peer, user, secret !== null && checkApopDigest(timestamp, secret, digest));
  }

  private settle(peer: string, user: string, ok: boolean): LoginResult {
    if (ok) {
      this.throttle.succeeded(peer, user);
      return { kind: "ok", user };
    }
    this.throttle.failed(peer, user);
    return { kind: "failed", user };
  }
}
