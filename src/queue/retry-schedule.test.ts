// Unit tests of the retry schedule: intervals by attempt, the last one repeating, the deadline, jitter.
import { test } from "node:test";
import assert from "node:assert/strict";
import { nextAttempt } from "./retry-schedule.js";

const policy = { schedule: [300, 900, 3600], maxQueueAge: 5 * 86400 };
const t0 = 1_000_000_000_000;

test("the n-th failure waits the n-th interval; the last interval repeats", () => {
  assert.deepEqual(nextAttempt(policy, 1, t0, t0), { kind: "retry", at: t0 + 300_000 });
  assert.deepEqual(nextAttempt(policy, 2, t0, t0 + 1000), { kind: "retry", at: t0 + 1000 + 900_000 });
  assert.deepEqual(nextAttempt(policy, 3, t0, t0), { kind: "retry", at: t0 + 3_600_000 });
  assert.deepEqual(nextAttempt(policy, 40, t0, t0), { kind: "retry", at: t0 + 3_600_000 });
});

test("past max_queue_age it expires; a retry that would land after the deadline happens at the deadline", () => {
  const deadline = t0 + policy.maxQueueAge * 1000;
  assert.deepEqual(nextAttempt(policy, 9, t0, deadline), { kind: "expired" });
  assert.deepEqual(nextAttempt(policy, 9, t0, deadline + 1), { kind: "expired" });
  assert.deepEqual(nextAttempt(policy, 9, t0, deadline - 60_000), { kind: "retry", at: deadline });
});

test("jitter adds up to its fraction of the interval", () => {
  const p = { ...policy, jitter: 0.1 };
  assert.deepEqual(nextAttempt(p, 1, t0, t0, () => 0), { kind: "retry", at: t0 + 300_000 });
  assert.deepEqual(nextAttempt(p, 1, t0, t0, () => 0.999), { kind: "retry", at: t0 + 300_000 + 29_970 });
});
