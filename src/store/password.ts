// Password hashing with scrypt from node:crypto. Stored as "scrypt$N$r$p$salt$hash" (base64),
// so the cost can rise later without breaking old hashes. Comparison is constant-time.
// Both functions are synchronous: the CLI hashes one password; the server verifies only inside its
// hash worker (auth/hash-pool.ts), never on libuv's thread pool, which fsync needs.
import crypto from "node:crypto";

const N = 16384, R = 8, P = 1, LEN = 32;

export function hashPassword(password: string): string {
  const salt = crypto.randomBytes(16);
  const hash = crypto.scryptSync(password, salt, LEN, { N, r: R, p: P });
  return `scrypt$${N}$${R}$${P}$${salt.toString("base64")}$${hash.toString("base64")}`;
}

/** True when `password` matches the stored hash; false for a wrong password or a malformed hash. */
export function verifyPassword(password: string, stored: string): boolean {
  const parts = stored.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  const salt = Buffer.from(parts[4]!, "base64");
  const expected = Buffer.from(parts[5]!, "base64");
  const actual = crypto.scryptSync(password, salt, expected.length, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 });
  return crypto.timingSafeEqual(actual, expected);
}
