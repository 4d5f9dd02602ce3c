// Unit tests of the scheduler's timing with a fake runner: a kick runs at once, kicks during a run
// coalesce into one more run, domain kicks run per domain, the next look is at the earliest due time
// (or idleMs), and stop() waits for the run in progress.
import { test } from "node:test";
import assert from "node:assert/strict";
import { QueueScheduler, type Runs } from "./queue-scheduler.js";

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fake(due: () => number | null, runMs = 0) {
  const runs: (string | undefined)[] = [];
  const r: Runs = {
    async runOnce(d?: string) {
      runs.push(d);
      if (runMs) await tick(runMs);
    },
    async nextDue() {
      return due();
    },
  };
  return { r, runs };
}

test("a kick runs at once; kicks during a run make one more run, not one each", async () => {
  const { r, runs } = fake(() => null, 30);
  const s = new QueueScheduler(r, { idleMs: 60_000 });
  s.start();
  await tick(5);
  s.kick();
  s.kick();
  s.kick();
  await tick(100);
  assert.deepEqual(runs, [undefined, undefined]);
  await s.stop();
});

test("domain kicks run those domains only, one after another", async () => {
  const { r, runs } = fake(() => null, 20);
  const s = new QueueScheduler(r, { idleMs: 60_000 });
  s.kick("a.test");
  await tick(5);
  s.kick("b.test");
  s.kick("c.test");
  await tick(100);
  assert.deepEqual(runs, ["a.test", "b.test", "c.test"]);
  await s.stop();
});

test("the next run is at the earliest due time, or after idleMs; stop() waits for the run and plans nothing more", async () => {
  let due: number | null = Date.now() + 80;
  const { r, runs } = fake(() => due, 20);
  const s = new QueueScheduler(r, { idleMs: 60_000 });
  s.start();
  await tick(40);
  assert.equal(runs.length, 1);
  due = null;
  await tick(100);
  assert.equal(runs.length, 2, "woke at the due time");
  const seen = fake(() => null);
  const s2 = new QueueScheduler(seen.r, { idleMs: 30 });
  s2.start();
  await tick(100);
  assert.ok(seen.runs.length >= 3, `looked every idleMs: ${seen.runs.length}`);
  await s2.stop();
  s.kick();
  await tick(5);
  const stopping = s.stop();
  await stopping;
  const after = runs.length;
  await tick(60);
  assert.equal(runs.length, after, "nothing after stop");
});
