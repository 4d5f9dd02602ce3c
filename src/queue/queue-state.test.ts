// Unit tests of the queue state and scan on a temporary data_dir, with entries made by the real spool:
// rows override the envelope, several outcomes commit together, state survives a reopen (a restart),
// due and finished entries, removal order, and envelopes that do not parse.
import { queueTestMessage } from "../testing/queued-message.js";
import { afterEach, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { reply } from "../core/reply.js";
import { silentLogger } from "../core/log.js";
import { Spool } from "../spool/spool.js";
import { dueRecipients, removeEntries, scanQueue } from "./queue-scan.js";
import { isFinal, QueueState } from "./queue-state.js";

let dataDir: string;
let queueDir: string;
beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-queue-"));
  queueDir = path.join(dataDir, "queue");
});
afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const queue = (id: string, remote: string[], receivedAt = new Date()) => queueTestMessage(dataDir, id, remote, receivedAt);

test("a new entry is scheduled for every recipient and due at once; rows record attempts and survive a reopen", async () => {
  const received = new Date(Date.now() - 1000);
  await queue("Q1", ["a@far.test", "b@far.test", "c@near.test"], received);
  let state = new QueueState(queueDir);
  let [m] = await scanQueue(queueDir, state);
  assert.ok(m);
  assert.equal(fs.existsSync(m.messagePath), true);
  assert.deepEqual(m.recipients.map((r) => [r.to, r.state.kind, r.attempts, r.nextAttempt]), [
    ["a@far.test", "scheduled", 0, received.getTime()],
    ["b@far.test", "scheduled", 0, received.getTime()],
    ["c@near.test", "scheduled", 0, received.getTime()],
  ]);
  assert.equal(dueRecipients(m, Date.now()).length, 3);
  const later = Date.now() + 300_000;
  state.record([
    { id: "Q1", to: "a@far.test", state: { kind: "delivered", reply: reply(250, "2.0.0", "Ok: queued as X") }, nextAttempt: null },
    { id: "Q1", to: "b@far.test", state: { kind: "deferred", reply: reply(451, "4.7.1", "greylisted") }, nextAttempt: later },
  ]);
  state.close();
  // A restart: a new QueueState reads what was committed.
  state = new QueueState(queueDir);
  [m] = await scanQueue(queueDir, state);
  assert.deepEqual(m!.recipients.map((r) => [r.to, r.state.kind, r.attempts, r.nextAttempt]), [
    ["a@far.test", "delivered", 1, null],
    ["b@far.test", "deferred", 1, later],
    ["c@near.test", "scheduled", 0, received.getTime()],
  ]);
  const b = m!.recipients[1]!;
  assert.deepEqual(b.state.kind === "deferred" && b.state.reply, reply(451, "4.7.1", "greylisted"));
  assert.deepEqual(dueRecipients(m!, Date.now()).map((r) => r.to), ["c@near.test"]);
  assert.deepEqual(dueRecipients(m!, later).map((r) => r.to), ["b@far.test", "c@near.test"]);
  assert.equal(m!.recipients.every(isFinal), false);
  state.record([{ id: "Q1", to: "b@far.test", state: { kind: "deferred", reply: reply(421, "4.4.2", "timeout") }, nextAttempt: later + 1 }]);
  [m] = await scanQueue(queueDir, state);
  assert.equal(m!.recipients[1]!.attempts, 2, "each record is one more attempt");
  state.close();
});

test("an entry whose recipients are all final is finished; removal takes files then rows, and a second removal is harmless", async () => {
  await queue("Q2", ["a@far.test", "b@far.test"]);
  const state = new QueueState(queueDir);
  state.record([
    { id: "Q2", to: "a@far.test", state: { kind: "delivered", reply: reply(250, "2.0.0", "Ok") }, nextAttempt: null },
    { id: "Q2", to: "b@far.test", state: { kind: "failed", reply: reply(550, "5.1.1", "no such user") }, nextAttempt: null },
  ]);
  const [m] = await scanQueue(queueDir, state);
  assert.equal(m!.recipients.every(isFinal), true);
  assert.deepEqual(dueRecipients(m!, Number.MAX_SAFE_INTEGER), []);
  await removeEntries(queueDir, state, ["Q2"]);
  assert.equal(fs.existsSync(path.join(queueDir, "envelopes", "Q2.json")), false);
  assert.equal(fs.existsSync(path.join(queueDir, "messages", "Q2.eml")), false);
  assert.deepEqual(await scanQueue(queueDir, state), []);
  await removeEntries(queueDir, state, ["Q2"]);
  state.close();
});

test("entries come oldest first; an envelope that does not parse is reported and skipped; no queue folder is an empty queue", async () => {
  const state = new QueueState(queueDir);
  assert.deepEqual(await scanQueue(path.join(dataDir, "nothing-here"), state), []);
  await queue("Q4", ["x@far.test"], new Date(2000));
  await queue("Q3", ["x@far.test"], new Date(1000));
  fs.writeFileSync(path.join(queueDir, "envelopes", "BAD.json"), "{not json");
  const bad: string[] = [];
  const all = await scanQueue(queueDir, state, (file) => bad.push(path.basename(file)));
  assert.deepEqual(all.map((m) => m.envelope.id), ["Q3", "Q4"]);
  assert.deepEqual(bad, ["BAD.json"]);
  state.close();
});

test("state.db and its WAL are private (0600)", () => {
  const state = new QueueState(queueDir);
  state.record([{ id: "Z", to: "z@far.test", state: { kind: "scheduled" }, nextAttempt: 1 }]);
  for (const f of ["state.db", "state.db-wal"]) assert.equal(fs.statSync(path.join(queueDir, f)).mode & 0o777, 0o600, f);
  state.close();
});

test("DSN requests reach the queue entry: RET/ENVID, NOTIFY per recipient, ORCPT (the RCPT address when an alias expanded it)", async () => {
  const msg = await new Spool(dataDir, silentLogger()).open({
    id: "D1",
    sender: "alice@localhost",
    recipients: [
      { address: "x@far.test", route: { local: [], remote: ["x@far.test"] }, dsn: { notify: { kind: "never" } } },
      { address: "team@localhost", route: { local: [], remote: ["y@far.test", "z@far.test"] } },
      { address: "w@far.test", route: { local: [], remote: ["w@far.test"] }, dsn: { orcpt: { addrType: "rfc822", address: "W@far.test" } } },
    ],
    helo: "client.test",
    peerAddress: "127.0.0.1",
    hostname: "mx.test",
    protocol: "ESMTP",
    receivedAt: new Date(),
    dsn: { ret: "FULL", envid: "E-1" },
  });
  await msg.write([Buffer.from("Subject: s\r\n\r\nb\r\n")]);
  await msg.commit();
  const env = JSON.parse(fs.readFileSync(path.join(queueDir, "envelopes", "D1.json"), "utf8"));
  assert.equal(env.ret, "FULL");
  assert.equal(env.envid, "E-1");
  assert.deepEqual(
    env.recipients.map((r: { to: string; notify?: string; orcpt?: string }) => [r.to, r.notify, r.orcpt]),
    [
      ["x@far.test", "NEVER", undefined],
      ["y@far.test", undefined, "rfc822;team@localhost"],
      ["z@far.test", undefined, "rfc822;team@localhost"],
      ["w@far.test", undefined, "rfc822;W@far.test"],
    ],
  );
});
