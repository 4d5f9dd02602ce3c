// APOP (RFC 1939 §7): the greeting carries a timestamp unique per connection, and the client proves
// it knows the shared secret by sending MD5(timestamp + secret) in hex. Trusts nothing the client
// sends: the digest is checked for shape, then compared in constant time.
import crypto from "node:crypto";

/** Makes greeting timestamps "<pid.counter.millis@hostname>", never the same twice in a process. */
export class ApopTimestamps {
  private counter = 0;

  constructor(
    private readonly hostname: string,
    private readonly pid: number = process.pid,
    private readonly now: () => number = Date.now,
  ) {}

  next(): string {
    this.counter++;
    return `<${this.pid}.${this.counter}.${this.now()}@${this.hostname}>`;
  }
}

/** MD5(timestamp + secret) as 32 lowercase hex digits. */
export function apopDigest(timestamp: string, secret: string): string {
  return crypto.createHash("md5").update(timestamp + secret, "utf8").digest("hex");
}

/** True when `given` is the digest of timestamp + secret (hex, either case). */
export function checkApopDigest(timestamp: string, secret: string, given: string): boolean {
  if (!/^[0-9a-fA-F]{32}$/.test(given)) return false;
  const expected = Buffer.from(apopDigest(timestamp, secret), "hex");
  return crypto.timingSafeEqual(expected, Buffer.from(given, "hex"));
}
