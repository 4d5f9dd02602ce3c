// Unit tests for the authenticator with fake credentials and a counting verifier: a throttled login
// is refused without any password check, results carry the canonical account name, APOP counts
// toward the same throttle, and a busy hash worker is reported as such.
import { test } from "node:test";
import assert from "node:assert/strict";
import { apopDigest } from "./apop.js";
import { Authenticator, SUCCESS_CACHE_MS } from "./authenticator.js";
import { FailureThrottle } from "./failure-throttle.js";
import type { PasswordVerifier, VerifyResult } from "./hash-pool.js";

const credentials = {
  passwordHash: (a: string) => (a === "alice@x" ? "hash-of-right" : null),
  apopSecret: (a: string) => (a === "alice@x" ? "apop-secret" : null),
};

function setup(answer: VerifyResult | null = null) {
  const calls: (string | null)[] = [];
  const verifier: PasswordVerifier = {
    async verify(password, hash) {
      calls.push(hash);
      return answer ?? (hash === "hash-of-right" && password === "right" ? "match" : "mismatch");
    },
  };
  const auth = new Authenticator(credentials, verifier, new FailureThrottle({ perIp: 100, perAccount: 2, windowMs: 60_000 }));
  return { auth, calls };
}

test("right and wrong passwords; names are folded to the account key", async () => {
  const { auth } = setup();
  assert.deepEqual(await auth.password("10.0.0.1", "ALICE@X", "right"), { kind: "ok", user: "alice@x" });
  assert.deepEqual(await auth.password("10.0.0.1", "alice@x", "wrong"), { kind: "failed", user: "alice@x" });
  assert.deepEqual(await auth.password("10.0.0.1", "nobody@x", "right"), { kind: "failed", user: "nobody@x" });
});

test("once throttled, no password is checked at all (no scrypt), even the right one", async () => {
  const { auth, calls } = setup();
  await auth.password("10.0.0.1", "alice@x", "wrong1");
  await auth.password("10.0.0.2", "alice@x", "wrong2");
  assert.equal(calls.length, 2);
  assert.deepEqual(await auth.password("10.0.0.3", "alice@x", "right"), { kind: "throttled", user: "alice@x", scope: "account" });
  assert.deepEqual(auth.apop("10.0.0.3", "alice@x", "<1@x>", apopDigest("<1@x>", "apop-secret")), { kind: "throttled", user: "alice@x", scope: "account" });
  assert.equal(calls.length, 2);
});

test("APOP failures count toward the same throttle; a busy worker is reported, not counted", async () => {
  const { auth } = setup();
  assert.deepEqual(auth.apop("10.0.0.1", "Alice@x", "<1@x>", apopDigest("<1@x>", "apop-secret")), { kind: "ok", user: "alice@x" });
  assert.equal(auth.apop("10.0.0.1", "alice@x", "<2@x>", "0".repeat(32)).kind, "failed");
  assert.equal(auth.apop("10.0.0.1", "alice@x", "<3@x>", "0".repeat(32)).kind, "failed");
  // Two failures: alice is held back for other IPs, but not for 10.0.0.1, which logged in to it before.
  assert.equal((await auth.password("10.0.0.9", "alice@x", "right")).kind, "throttled");
  assert.deepEqual(await auth.password("10.0.0.1", "alice@x", "right"), { kind: "ok", user: "alice@x" });
  const busy = setup("busy");
  assert.deepEqual(await busy.auth.password("10.0.0.1", "alice@x", "right"), { kind: "busy", user: "alice@x" });
  assert.deepEqual(await busy.auth.password("10.0.0.1", "alice@x", "right"), { kind: "busy", user: "alice@x" });
  assert.equal((await busy.auth.password("10.0.0.1", "alice@x", "right")).kind, "busy", "busy is never counted as a failure");
});

test("a password that matched is recognised again without a hash check, until it changes, expires or is wrong", async () => {
  let clock = 1_000_000;
  let stored = "hash-of-right";
  const calls: string[] = [];
  const verifier: PasswordVerifier = {
    async verify(password, hash) {
      calls.push(password);
      return hash === stored && password === (stored === "hash-of-right" ? "right" : "new") ? "match" : "mismatch";
    },
  };
  const creds = { passwordHash: (a: string) => (a === "alice@x" ? stored : null), apopSecret: () => null };
  const auth = new Authenticator(creds, verifier, new FailureThrottle({ perIp: 100, perAccount: 100, windowMs: 60_000 }), () => clock);
  assert.equal((await auth.password("10.0.0.1", "alice@x", "right")).kind, "ok");
  assert.equal((await auth.password("10.0.0.2", "ALICE@x", "right")).kind, "ok");
  assert.deepEqual(calls, ["right"], "the second login was recognised without scrypt");
  // A wrong password is always checked (and fails), and does not disturb the remembered one.
  assert.equal((await auth.password("10.0.0.1", "alice@x", "wrong")).kind, "failed");
  assert.deepEqual(calls, ["right", "wrong"]);
  assert.equal((await auth.password("10.0.0.1", "alice@x", "right")).kind, "ok");
  assert.equal(calls.length, 2);
  // After the cache time the hash is checked again.
  clock += SUCCESS_CACHE_MS;
  assert.equal((await auth.password("10.0.0.1", "alice@x", "right")).kind, "ok");
  assert.equal(calls.length, 3);
  // `petrel user passwd`: a new stored hash ends the entry at once; the old password fails.
  stored = "hash-of-new";
  assert.equal((await auth.password("10.0.0.1", "alice@x", "right")).kind, "failed");
  assert.equal((await auth.password("10.0.0.1", "alice@x", "new")).kind, "ok");
  assert.equal(calls.length, 5);
});
