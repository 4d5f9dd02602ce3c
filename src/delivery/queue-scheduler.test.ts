// Unit tests of the scheduler's timing with a fake runner: a kick runs at once, kicks during a run
// coalesce into one more run, domain kicks run per domain, the next look is at the earliest due time
// (or idleMs), and stop() waits for the run in progress.
import { test } from "node:test";
import assert from "node:assert/strict";
import { QueueScheduler, type Runs } from "./queue-scheduler.js";

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until cond() holds (the machine may be loaded: no fixed sleeps decide a result). */
async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !cond(); await tick(5)) if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
}

/** A fake runner whose runs end only when the test releases them (gate) or at once. */
function fake(due: () => number | null, gated = false) {
  const runs: (string | undefined)[] = [];
  const at: number[] = [];
  let release: (() => void)[] = [];
  let active = 0;
  const r: Runs = {
    async runOnce(d?: string) {
      runs.push(d);
      at.push(Date.now());
      active++;
      if (gated) await new Promise<void>((res) => release.push(res));
      active--;
    },
    async nextDue() {
      return due();
    },
  };
  const releaseAll = () => {
    const waiting = release;
    release = [];
    for (const f of waiting) f();
  };
  return { r, runs, at, releaseAll, running: () => active > 0 };
}

test("a kick runs at once; kicks during a run make one more run, not one each", async () => {
  const f = fake(() => null, true);
  const s = new QueueScheduler(f.r, { idleMs: 60_000 });
  s.start();
  await until("the first run", () => f.running());
  s.kick();
  s.kick();
  s.kick();
  f.releaseAll();
  await until("the second run", () => f.runs.length === 2 && f.running());
  f.releaseAll();
  await until("idle", () => !f.running());
  await tick(30);
  assert.deepEqual(f.runs, [undefined, undefined]);
  await s.stop();
});

test("domain kicks run those domains only, one after another", async () => {
  const f = fake(() => null, true);
  const s = new QueueScheduler(f.r, { idleMs: 60_000 });
  s.kick("a.test");
  await until("a.test running", () => f.running());
  s.kick("b.test");
  s.kick("c.test");
  for (let n = 2; n <= 3; n++) {
    f.releaseAll();
    await until(`run ${n}`, () => f.runs.length === n && f.running());
  }
  f.releaseAll();
  await until("idle", () => !f.running());
  await tick(30);
  assert.deepEqual(f.runs, ["a.test", "b.test", "c.test"]);
  await s.stop();
});

test("the next run is at the earliest due time, or after idleMs; stop() waits for the run and plans nothing more", async () => {
  const dueAt = Date.now() + 150;
  let due: number | null = dueAt;
  const f = fake(() => due);
  const s = new QueueScheduler(f.r, { idleMs: 60_000 });
  s.start();
  await until("the first run", () => f.runs.length >= 1);
  await until("the run at the due time", () => f.runs.length >= 2);
  due = null;
  assert.ok(f.at[1]! >= dueAt - 5, `woke at the due time, not before (${f.at[1]! - dueAt} ms)`);
  const seen = fake(() => null);
  const s2 = new QueueScheduler(seen.r, { idleMs: 30 });
  s2.start();
  await until("a look every idleMs", () => seen.runs.length >= 3);
  await s2.stop();
  s.kick();
  await s.stop();
  const after = f.runs.length;
  await tick(60);
  assert.equal(f.runs.length, after, "nothing after stop");
});
