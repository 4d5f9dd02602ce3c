// Unit tests for the password-hash worker: right and wrong passwords, unknown users, the bounded
// queue ("busy"), and that verification does not run on libuv's thread pool (fs calls stay fast).
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import { hashPassword } from "../store/password.js";
import { HashPool } from "./hash-pool.js";

const stored = hashPassword("correct horse");

test("verifies right, wrong and unknown-user passwords in the worker", async (t) => {
  const pool = new HashPool({ maxQueued: 8 });
  t.after(() => pool.close());
  assert.equal(await pool.verify("correct horse", stored), "match");
  assert.equal(await pool.verify("Correct horse", stored), "mismatch");
  assert.equal(await pool.verify("correct horse", null), "mismatch");
  assert.equal(await pool.verify("x", "not-a-hash"), "mismatch");
});

test("a full queue answers busy at once instead of queueing without bound", async (t) => {
  const pool = new HashPool({ maxQueued: 4 });
  t.after(() => pool.close());
  const results = await Promise.all(Array.from({ length: 10 }, () => pool.verify("guess", stored)));
  assert.equal(results.filter((r) => r === "busy").length, 6);
  assert.equal(results.filter((r) => r === "mismatch").length, 4);
  assert.equal(pool.queued, 0);
});

test("while 64 verifications run, libuv's pool still serves file system calls promptly", async (t) => {
  const pool = new HashPool({ maxQueued: 64 });
  t.after(() => pool.close());
  const guesses = Promise.all(Array.from({ length: 64 }, () => pool.verify("guess", stored)));
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) await fs.stat(os.tmpdir());
  const fsMs = performance.now() - t0;
  await guesses;
  // With scrypt on libuv's 4 threads, 20 stats queued behind 64 x ~50 ms of hashing took ~800 ms+.
  assert.ok(fsMs < 400, `20 fs.stat calls took ${fsMs.toFixed(0)} ms`);
});
