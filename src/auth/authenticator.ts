// Checks login credentials for POP3 (and, later, SMTP AUTH): the failure throttle first, then the
// password in the hash worker or the APOP digest (RFC 1939 §7). Trusts the store; trusts nothing the
// client sent. Account names are keyed ASCII-lowercase, so no Unicode case mapping reaches an account.
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

export class Authenticator {
  constructor(
    private readonly credentials: Credentials,
    private readonly verifier: PasswordVerifier,
    private readonly throttle: FailureThrottle,
  ) {}

  async password(peer: string, name: string, password: string): Promise<LoginResult> {
    const user = foldCase(name);
    const verdict = this.throttle.check(peer, user);
    if (verdict.kind === "throttled") return { kind: "throttled", user, scope: verdict.scope };
    const r = await this.verifier.verify(password, this.credentials.passwordHash(user));
    if (r === "busy") return { kind: "busy", user };
    return this.settle(peer, user, r === "match");
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
