// Unit tests of the queue runner with a fake router and transport over entries the real spool wrote:
// host and address fallback, per-recipient results, retries by the schedule, expiry, routing verdicts,
// removal of finished entries, one domain at a time (ETRN, queue flush), and the delivery log lines.
import { queueTestMessage } from "../testing/queued-message.js";
import { afterEach, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { Writable } from "node:stream";
import { reply, type Reply } from "../core/reply.js";
import { silentLogger } from "../core/log.js";
import { scanQueue } from "../queue/queue-scan.js";
import { QueueState } from "../queue/queue-state.js";
import { QueueRunner, runLimited, type AttemptResult, type Bounces, type Destination, type FailedRecipient } from "./queue-runner.js";

let dataDir: string;
let queueDir: string;
let state: QueueState;
beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-runner-"));
  queueDir = path.join(dataDir, "queue");
  state = new QueueState(queueDir);
});
afterEach(() => {
  state.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const queue = (id: string, remote: string[], receivedAt: Date, sender = "alice@localhost") => queueTestMessage(dataDir, id, remote, receivedAt, sender);

interface Call {
  readonly target: string;
  readonly id: string;
  readonly recipients: readonly string[];
}

function setup(routes: Record<string, Destination>, answer: (target: string, rcpts: readonly string[]) => AttemptResult, clock: { now: number }, bounces?: Bounces) {
  const calls: Call[] = [];
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: "info" }, new Writable({ write: (c, _e, done) => (lines.push(JSON.parse(String(c))), done()) }));
  const runner = new QueueRunner({
    queueDir,
    state,
    router: { route: async (d) => routes[d] ?? { kind: "bounce", status: "5.1.2", reason: `no such domain ${d}` } },
    transport: {
      async attempt(target, m, recipients) {
        calls.push({ target: `${target.host}[${target.address}]`, id: m.envelope.id, recipients });
        return answer(`${target.host}[${target.address}]`, recipients);
      },
    },
    retry: { schedule: [60, 600], maxQueueAge: 3600 },
    ...(bounces ? { bounces } : {}),
    log,
    now: () => clock.now,
  });
  return { runner, calls, lines };
}

const replies = (entries: [string, Reply][]): AttemptResult => ({ kind: "replies", replies: new Map(entries) });

test("hosts in order, every address of a host; the first that answers gives each recipient its result", async () => {
  const t0 = Date.now();
  await queue("R1", ["ok@far.test", "later@far.test", "gone@far.test"], new Date(t0));
  const clock = { now: t0 };
  const { runner, calls, lines } = setup(
    { "far.test": { kind: "hosts", port: 25, profile: "mx", hosts: [{ host: "mx1.far.test", addresses: ["::1", "127.0.0.9"] }, { host: "mx2.far.test", addresses: ["127.0.0.10"] }] } },
    (target) =>
      target.startsWith("mx1")
        ? { kind: "unreachable", reason: "connection refused" }
        : replies([
            ["ok@far.test", reply(250, "2.0.0", "Ok: queued as 9")],
            ["later@far.test", reply(451, "4.7.1", "greylisted")],
            ["gone@far.test", reply(550, "5.1.1", "no such user")],
          ]),
    clock,
  );
  const summary = await runner.runOnce();
  assert.deepEqual(calls.map((c) => c.target), ["mx1.far.test[::1]", "mx1.far.test[127.0.0.9]", "mx2.far.test[127.0.0.10]"]);
  assert.deepEqual(calls[2]!.recipients, ["ok@far.test", "later@far.test", "gone@far.test"], "one transaction for the domain");
  assert.deepEqual(summary, { attempted: 3, delivered: 1, deferred: 1, failed: 1, removed: 0 });
  const [m] = await scanQueue(queueDir, state);
  assert.deepEqual(m!.recipients.map((r) => [r.to, r.state.kind, r.attempts, r.nextAttempt]), [
    ["ok@far.test", "delivered", 1, null],
    ["later@far.test", "deferred", 1, t0 + 60_000],
    ["gone@far.test", "failed", 1, null],
  ]);
  const delivery = lines.filter((l) => l.msg === "delivery");
  assert.deepEqual(delivery.map((l) => [l.to, l.status, l.dsn, l.relay]), [
    ["ok@far.test", "sent", "2.0.0", "mx2.far.test[127.0.0.10]"],
    ["later@far.test", "deferred", "4.7.1", "mx2.far.test[127.0.0.10]"],
    ["gone@far.test", "bounced", "5.1.1", "mx2.far.test[127.0.0.10]"],
  ]);
  assert.equal(delivery[2]!.reply, "550 5.1.1 no such user");

  // Not due yet: nothing is tried. At the retry time only the deferred one is, and then the entry goes.
  clock.now = t0 + 30_000;
  assert.equal((await runner.runOnce()).attempted, 0);
  clock.now = t0 + 60_000;
  const again = setup({ "far.test": { kind: "hosts", port: 25, profile: "mx", hosts: [{ host: "mx2.far.test", addresses: ["127.0.0.10"] }] } }, () => replies([["later@far.test", reply(250, "2.0.0", "Ok")]]), clock);
  assert.deepEqual(await again.runner.runOnce(), { attempted: 1, delivered: 1, deferred: 0, failed: 0, removed: 1 });
  assert.deepEqual(again.calls.map((c) => c.recipients), [["later@far.test"]]);
  assert.deepEqual(await scanQueue(queueDir, state), []);
  assert.equal(fs.readdirSync(path.join(queueDir, "messages")).length, 0);
});

test("no host reachable: deferred with the last reason, retried by the schedule, failed once max_queue_age has passed", async () => {
  const t0 = Date.now();
  await queue("R2", ["x@down.test"], new Date(t0));
  const clock = { now: t0 };
  const { runner } = setup({ "down.test": { kind: "hosts", port: 25, profile: "mx", hosts: [{ host: "mx.down.test", addresses: ["127.0.0.11"] }] } }, () => ({ kind: "unreachable", reason: "timed out" }), clock);
  await runner.runOnce();
  let [m] = await scanQueue(queueDir, state);
  const r = m!.recipients[0]!;
  assert.equal(r.state.kind, "deferred");
  assert.match(r.state.kind === "deferred" ? r.state.reply.lines[0]! : "", /connection failed: mx\.down\.test\[127\.0\.0\.11\]: timed out/);
  assert.equal(r.nextAttempt, t0 + 60_000);
  clock.now = t0 + 60_000;
  await runner.runOnce();
  [m] = await scanQueue(queueDir, state);
  assert.equal(m!.recipients[0]!.nextAttempt, t0 + 60_000 + 600_000, "the second interval");
  clock.now = t0 + 3600_000;
  const s = await runner.runOnce();
  assert.deepEqual(s, { attempted: 1, delivered: 0, deferred: 0, failed: 1, removed: 1 }, "expired: failed, and the entry removed");
});

test("routing verdicts: a null MX or NXDOMAIN fails at once, SERVFAIL defers; a domain filter tries only that domain", async () => {
  const t0 = Date.now();
  await queue("R3", ["a@nullmx.test", "b@broken.test", "c@nowhere.test", "d@fine.test"], new Date(t0));
  const clock = { now: t0 };
  const { runner, calls } = setup(
    {
      "nullmx.test": { kind: "bounce", status: "5.1.10", reason: "nullmx.test does not accept mail (null MX)" },
      "broken.test": { kind: "defer", status: "4.4.3", reason: "DNS SERVFAIL for broken.test" },
      "fine.test": { kind: "hosts", port: 25, profile: "mx", hosts: [{ host: "mx.fine.test", addresses: ["127.0.0.12"] }] },
    },
    () => replies([["d@fine.test", reply(250, "2.0.0", "Ok")]]),
    clock,
  );
  assert.deepEqual(await runner.runOnce("FINE.test"), { attempted: 1, delivered: 1, deferred: 0, failed: 0, removed: 0 });
  assert.equal(calls.length, 1);
  await runner.runOnce();
  const [m] = await scanQueue(queueDir, state);
  const byTo = new Map(m!.recipients.map((r) => [r.to, r]));
  assert.equal(byTo.get("a@nullmx.test")!.state.kind, "failed");
  assert.equal(byTo.get("b@broken.test")!.state.kind, "deferred");
  assert.equal(byTo.get("c@nowhere.test")!.state.kind, "failed");
  const a = byTo.get("a@nullmx.test")!.state;
  assert.deepEqual(a.kind === "failed" && a.reply, reply(550, "5.1.10", "nullmx.test does not accept mail (null MX)"));
  assert.equal(calls.length, 1, "no transport attempt for routing verdicts");
});

test("nextDue is the earliest planned attempt; waitingFor counts messages for a domain (and its subdomains)", async () => {
  const t0 = Date.now();
  await queue("R4", ["a@far.test", "b@mx.far.test"], new Date(t0));
  await queue("R5", ["c@other.test"], new Date(t0 + 5));
  const clock = { now: t0 };
  const { runner } = setup({}, () => ({ kind: "unreachable", reason: "x" }), clock);
  assert.equal(await runner.nextDue(), t0);
  assert.equal(await runner.waitingFor("far.test", false), 1);
  assert.equal(await runner.waitingFor("FAR.test", true), 1);
  assert.equal(await runner.waitingFor("mx.far.test", false), 1);
  assert.equal(await runner.waitingFor("other.test", false), 1);
  assert.equal(await runner.waitingFor("none.test", true), 0);
  state.record([{ id: "R5", to: "c@other.test", state: { kind: "deferred", reply: reply(451, "4.0.0", "later") }, nextAttempt: t0 + 9_000 }]);
  state.record([
    { id: "R4", to: "a@far.test", state: { kind: "delivered", reply: reply(250, "2.0.0", "Ok") }, nextAttempt: null },
    { id: "R4", to: "b@mx.far.test", state: { kind: "failed", reply: reply(550, "5.0.0", "no") }, nextAttempt: null },
  ]);
  assert.equal(await runner.nextDue(), t0 + 9_000);
  assert.equal(await runner.waitingFor("far.test", true), 0);
});

test("recipients that failed for good are bounced to the sender, with the relay that refused them; never a bounce for a bounce", async () => {
  const t0 = Date.now();
  await queue("B1", ["gone@far.test", "ok@far.test", "x@nullmx.test"], new Date(t0));
  await queue("B2", ["gone@far.test"], new Date(t0), "");
  const bounced: [string, FailedRecipient[]][] = [];
  const { runner, lines } = setup(
    { "far.test": { kind: "hosts", port: 25, profile: "mx", hosts: [{ host: "mx.far.test", addresses: ["127.0.0.13"] }] }, "nullmx.test": { kind: "bounce", status: "5.1.10", reason: "null MX" } },
    (_t, rcpts) => replies(rcpts.map((r) => [r, r.startsWith("gone") ? reply(550, "5.1.1", "no such user") : reply(250, "2.0.0", "Ok")])),
    { now: t0 },
    { bounce: async (m, failed) => void bounced.push([m.envelope.id, [...failed]]) },
  );
  await runner.runOnce();
  assert.deepEqual(bounced, [
    [
      "B1",
      [
        { to: "gone@far.test", reply: reply(550, "5.1.1", "no such user"), relay: "mx.far.test[127.0.0.13]" },
        { to: "x@nullmx.test", reply: reply(550, "5.1.10", "null MX"), relay: "none" },
      ],
    ],
  ]);
  assert.ok(lines.some((l) => l.msg === "undeliverable mail from the null sender dropped: no bounce for a bounce" && l.id === "B2"));
});

test("NOTIFY=NEVER asks for no bounce: such a recipient fails silently, the others are reported", async () => {
  const t0 = Date.now();
  await queueTestMessage(dataDir, "N1", [
      { address: "quiet@far.test", route: { local: [], remote: ["quiet@far.test"] }, dsn: { notify: { kind: "never" } } },
      { address: "loud@far.test", route: { local: [], remote: ["loud@far.test"] }, dsn: { notify: { kind: "on", events: ["FAILURE"] } } },
      { address: "delay@far.test", route: { local: [], remote: ["delay@far.test"] }, dsn: { notify: { kind: "on", events: ["DELAY"] } } },
  ], new Date(t0));
  const bounced: string[] = [];
  const { runner } = setup(
    { "far.test": { kind: "hosts", port: 25, profile: "mx", hosts: [{ host: "mx.far.test", addresses: ["127.0.0.14"] }] } },
    (_t, rcpts) => replies(rcpts.map((r) => [r, reply(550, "5.1.1", "no")])),
    { now: t0 },
    { bounce: async (_m, failed) => void bounced.push(...failed.map((f) => f.to)) },
  );
  await runner.runOnce();
  assert.deepEqual(bounced, ["loud@far.test"]);
});

test("runLimited: never more than the total at once, nor per destination; every job runs once, in order per destination", async () => {
  const jobs = Array.from({ length: 30 }, (_, i) => ({ i, key: `d${i % 3}` }));
  let running = 0;
  let peak = 0;
  const perKey = new Map<string, number>();
  let peakPerKey = 0;
  const done: number[] = [];
  await runLimited(jobs, (j) => j.key, { total: 5, perDestination: 2 }, async (j) => {
    running++;
    perKey.set(j.key, (perKey.get(j.key) ?? 0) + 1);
    peak = Math.max(peak, running);
    peakPerKey = Math.max(peakPerKey, perKey.get(j.key)!);
    await new Promise((r) => setTimeout(r, 3 + (j.i % 4)));
    perKey.set(j.key, perKey.get(j.key)! - 1);
    running--;
    done.push(j.i);
  });
  assert.equal(done.length, 30);
  assert.ok(peak <= 5 && peak >= 4, `peak ${peak}`);
  assert.equal(peakPerKey, 2);
  const errors: unknown[] = [];
  await runLimited([1, 2], () => "k", { total: 2, perDestination: 2 }, async (n) => {
    if (n === 1) throw new Error("boom");
  }, (e) => errors.push(e));
  assert.equal(errors.length, 1);
  await runLimited([], () => "k", { total: 1, perDestination: 1 }, async () => undefined);
});

test("jobs of several domains run in parallel within the limits; each message gets one bounce for all its failures", async () => {
  const t0 = Date.now();
  await queue("P1", ["a@one.test", "b@two.test", "c@three.test"], new Date(t0));
  let inFlight = 0;
  let peak = 0;
  const bounced: string[][] = [];
  const hosts = (h: string): Destination => ({ kind: "hosts", port: 25, profile: "mx", hosts: [{ host: h, addresses: ["127.0.0.15"] }] });
  const runner = new QueueRunner({
    queueDir,
    state,
    router: { route: async (d) => hosts(`mx.${d}`) },
    transport: {
      async attempt(_t, _m, rcpts) {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 30));
        inFlight--;
        return { kind: "replies", replies: new Map(rcpts.map((r) => [r, reply(550, "5.1.1", "no")])) };
      },
    },
    retry: { schedule: [60], maxQueueAge: 3600 },
    concurrency: { total: 10, perDestination: 2 },
    bounces: { bounce: async (_m, failed) => void bounced.push(failed.map((f) => f.to).sort()) },
    log: silentLogger(),
    now: () => t0,
  });
  await runner.runOnce();
  assert.equal(peak, 3, "the three domains at once");
  assert.deepEqual(bounced, [["a@one.test", "b@two.test", "c@three.test"]]);
});

test("delivery.delay_warning: once the message has waited that long, its sender is told once which recipients are still retried (NOTIFY honoured)", async () => {
  const t0 = Date.now();
  await queueTestMessage(dataDir, "W1", [
      { address: "slow@far.test", route: { local: [], remote: ["slow@far.test"] } },
      { address: "nodelay@far.test", route: { local: [], remote: ["nodelay@far.test"] }, dsn: { notify: { kind: "on", events: ["FAILURE"] } } },
  ], new Date(t0));
  const notices: { to: string[]; until: number }[] = [];
  const clock = { now: t0 };
  const runner = new QueueRunner({
    queueDir,
    state,
    router: { route: async () => ({ kind: "hosts", port: 25, profile: "mx", hosts: [{ host: "mx.far.test", addresses: ["127.0.0.16"] }] }) },
    transport: { attempt: async (_t, _m, rcpts) => replies(rcpts.map((r) => [r, reply(451, "4.2.0", "busy")])) },
    retry: { schedule: [60], maxQueueAge: 3600 },
    delayWarning: 120,
    bounces: { bounce: async () => undefined, delayed: async (_m, waiting, until) => void notices.push({ to: waiting.map((w) => w.to), until: until.getTime() }) },
    log: silentLogger(),
    now: () => clock.now,
  });
  await runner.runOnce();
  assert.deepEqual(notices, [], "not yet: the message is younger than delay_warning");
  clock.now = t0 + 60_000;
  await runner.runOnce();
  assert.deepEqual(notices, []);
  clock.now = t0 + 121_000;
  await runner.runOnce();
  assert.deepEqual(notices, [{ to: ["slow@far.test"], until: t0 + 3600_000 }], "NOTIFY=FAILURE asked for no delay notice");
  clock.now = t0 + 190_000;
  await runner.runOnce();
  assert.equal(notices.length, 1, "once per message");
});

test("a bounce that cannot be queued stays owed: the entry is kept, and the next run sends it once", async () => {
  const t0 = Date.now();
  await queue("O1", ["gone@far.test"], new Date(t0));
  let fail = true;
  const bounced: string[] = [];
  const { runner } = setup(
    { "far.test": { kind: "hosts", port: 25, profile: "mx", hosts: [{ host: "mx.far.test", addresses: ["127.0.0.15"] }] } },
    (_t, rcpts) => replies(rcpts.map((r) => [r, reply(550, "5.1.1", "no such user")])),
    { now: t0 },
    {
      bounce: async (m, failed) => {
        if (fail) throw new Error("disk full");
        bounced.push(`${m.envelope.id}:${failed.map((f) => `${f.to} ${f.relay}`).join(",")}`);
      },
    },
  );
  assert.deepEqual({ ...(await runner.runOnce()) }, { attempted: 1, delivered: 0, deferred: 0, failed: 1, removed: 0 });
  assert.deepEqual([...state.noticeIds()], ["O1"]);
  assert.ok((await runner.nextDue())! <= Date.now() + 60_000, "a run is planned for the owed bounce");
  // A restart: the owed bounce survives in state.db.
  state.close();
  state = new QueueState(queueDir);
  const again = setup({}, () => replies([]), { now: t0 }, { bounce: async (m, failed) => void bounced.push(`${m.envelope.id}:${failed.map((f) => `${f.to} ${f.relay}`).join(",")}`) });
  fail = false;
  assert.equal((await again.runner.runOnce()).removed, 1);
  assert.deepEqual(bounced, ["O1:gone@far.test mx.far.test[127.0.0.15]"]);
  assert.equal(state.noticeIds().size, 0);
  assert.equal((await again.runner.runOnce()).removed, 0);
  assert.equal(bounced.length, 1);
});

test("returnToSender (queue bounce): waiting recipients fail with 5.0.0 without an attempt, delivered ones stay, the sender gets one bounce", async () => {
  const t0 = Date.now();
  await queue("R1", ["ok@far.test", "slow@slow.test", "quiet@slow.test"], new Date(t0));
  const bounced: [string, FailedRecipient[]][] = [];
  const clock = { now: t0 };
  const { runner, calls, lines } = setup(
    {
      "far.test": { kind: "hosts", port: 25, profile: "mx", hosts: [{ host: "mx.far.test", addresses: ["127.0.0.16"] }] },
      "slow.test": { kind: "hosts", port: 25, profile: "mx", hosts: [{ host: "mx.slow.test", addresses: ["127.0.0.17"] }] },
    },
    (t, rcpts) => replies(rcpts.map((r) => [r, t.startsWith("mx.far") ? reply(250, "2.0.0", "Ok") : reply(451, "4.3.0", "later")])),
    clock,
    { bounce: async (m, failed) => void bounced.push([m.envelope.id, [...failed]]) },
  );
  await runner.runOnce();
  const [m] = await scanQueue(queueDir, state);
  const result = runner.returnToSender(m!);
  assert.deepEqual(result, { kind: "returned", recipients: ["slow@slow.test", "quiet@slow.test"] });
  assert.ok(lines.some((l) => l.msg === "delivery" && l.to === "slow@slow.test" && l.status === "bounced" && l.dsn === "5.0.0"));
  const attempts = calls.length;
  assert.equal((await runner.runOnce()).removed, 1);
  assert.equal(calls.length, attempts, "no attempt after the administrator returned it");
  assert.equal(bounced.length, 1);
  assert.deepEqual(bounced[0]![1].map((f) => [f.to, f.reply.enhanced, f.relay]), [
    ["slow@slow.test", "5.0.0", "none"],
    ["quiet@slow.test", "5.0.0", "none"],
  ]);
  assert.match(bounced[0]![1][0]!.reply.lines[0]!, /returned to the sender by the postmaster/);
});

test("a message is in flight while any of its domain jobs runs: queue bounce waits for the last one", async () => {
  const t0 = Date.now();
  await queue("F1", ["a@quick.test", "b@slow.test"], new Date(t0));
  let release!: () => void;
  const slowGate = new Promise<void>((r) => (release = r));
  let quickDone = false;
  const runner = new QueueRunner({
    queueDir,
    state,
    router: { route: async (d) => ({ kind: "hosts", port: 25, profile: "mx", hosts: [{ host: `mx.${d}`, addresses: ["127.0.0.18"] }] }) },
    transport: {
      async attempt(t, _m, rcpts) {
        if (t.host === "mx.slow.test") await slowGate;
        else quickDone = true;
        return { kind: "replies", replies: new Map(rcpts.map((r) => [r, reply(451, "4.3.0", "later")])) };
      },
    },
    retry: { schedule: [60], maxQueueAge: 3600 },
    concurrency: { total: 10, perDestination: 2 },
    log: silentLogger(),
    now: () => t0,
  });
  const run = runner.runOnce();
  for (let i = 0; i < 200 && !quickDone; i++) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 20));
  const [m] = await scanQueue(queueDir, state);
  assert.deepEqual(runner.returnToSender(m!), { kind: "busy" }, "the slow domain's job still runs");
  assert.equal(await runner.idle("F1", 50), false);
  release();
  await run;
  assert.equal(await runner.idle("F1", 1000), true);
});
