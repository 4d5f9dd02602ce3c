// Unit tests of the bounce sender with the real spool: a local sender gets a readable report in their
// Maildir from the null sender; a remote sender's bounce is queued (and the scheduler told); an address
// that leads nowhere sends nothing.
import { afterEach, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "../core/log.js";
import { reply } from "../core/reply.js";
import { scanQueue } from "../queue/queue-scan.js";
import { QueueState } from "../queue/queue-state.js";
import { Spool } from "../spool/spool.js";
import { BounceSender } from "./bounce-sender.js";

let dataDir: string;
let state: QueueState;
beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-bounce-"));
  state = new QueueState(path.join(dataDir, "queue"));
});
afterEach(() => {
  state.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function queued(sender: string) {
  const spool = new Spool(dataDir, silentLogger());
  const msg = await spool.open({
    id: "ORIG1",
    sender,
    recipients: [{ address: "gone@far.test", route: { local: [], remote: ["gone@far.test"] } }],
    helo: "client.test",
    peerAddress: "127.0.0.1",
    hostname: "mx.petrel.test",
    protocol: "ESMTPSA",
    receivedAt: new Date(),
  });
  await msg.write([Buffer.from("From: alice@localhost\r\nSubject: lunch?\r\n\r\nsecret body\r\n")]);
  await msg.commit();
  return { spool, m: (await scanQueue(path.join(dataDir, "queue"), state))[0]! };
}

const failed = [{ to: "gone@far.test", reply: reply(550, "5.1.1", "<gone@far.test>: no such user"), relay: "mx.far.test[127.0.0.9]" }];

test("a local sender gets the report in their Maildir, from <>, naming the remote server and its reply, with the original's headers only", async () => {
  const { spool, m } = await queued("alice@localhost");
  let kicked = 0;
  const sender = new BounceSender({
    hostname: "mx.petrel.test",
    spool,
    routeOf: (a) => ({ route: { local: [a], remote: [] } }),
    newId: () => "BOUNCE1",
    log: silentLogger(),
    onQueued: () => kicked++,
  });
  await sender.bounce(m, failed);
  const dir = path.join(dataDir, "mailboxes", "localhost", "alice", "new");
  const [file] = fs.readdirSync(dir);
  const text = fs.readFileSync(path.join(dir, file!), "utf8");
  assert.match(text, /^Return-Path: <>\n/);
  assert.match(text, /\nSubject: Undelivered Mail Returned to Sender\n/);
  assert.match(text, /\nContent-Type: multipart\/report; report-type=delivery-status;/);
  assert.match(text, /\nFinal-Recipient: rfc822;\s*gone@far\.test\n/);
  assert.match(text, /\nStatus: 5\.1\.1\n/);
  assert.match(text, /\nRemote-MTA: dns;\s*mx\.far\.test\n/);
  assert.match(text, /\nDiagnostic-Code: smtp;\s*550 5\.1\.1 <gone@far\.test>: no such user\n/);
  assert.match(text, /\nX-Petrel-Queue-ID: ORIG1\n/);
  assert.match(text, /\nSubject: lunch\?\n/, "the original's headers come back");
  assert.doesNotMatch(text, /secret body/, "RET=HDRS: not the body");
  assert.equal(kicked, 0, "nothing was queued");
});

test("a remote sender's bounce goes to the queue from <> and the scheduler is told; an address that leads nowhere sends nothing", async () => {
  const { spool, m } = await queued("bob@remote.test");
  let kicked = 0;
  const deps = { hostname: "mx.petrel.test", spool, newId: () => "BOUNCE2", log: silentLogger(), onQueued: () => kicked++ };
  await new BounceSender({ ...deps, routeOf: (a) => ({ route: { local: [], remote: [a] } }) }).bounce(m, failed);
  const entries = await scanQueue(path.join(dataDir, "queue"), state);
  const bounce = entries.find((e) => e.envelope.id === "BOUNCE2");
  assert.ok(bounce);
  assert.equal(bounce.envelope.sender, "");
  assert.deepEqual(bounce.recipients.map((r) => r.to), ["bob@remote.test"]);
  assert.equal(kicked, 1);
  await new BounceSender({ ...deps, newId: () => "BOUNCE3", routeOf: () => ({ refused: reply(550, "5.1.1", "no such user") }) }).bounce(m, failed);
  assert.equal((await scanQueue(path.join(dataDir, "queue"), state)).some((e) => e.envelope.id === "BOUNCE3"), false);
});

test("a delay notice says nothing needs doing and until when the retries go on", async () => {
  const { spool, m } = await queued("alice@localhost");
  const sender = new BounceSender({ hostname: "mx.petrel.test", spool, routeOf: (a) => ({ route: { local: [a], remote: [] } }), newId: () => "DELAY1", log: silentLogger() });
  await sender.delayed(m, [{ to: "gone@far.test", reply: reply(451, "4.2.0", "mailbox busy"), relay: "mx.far.test[127.0.0.9]" }], new Date("2030-01-02T03:04:05Z"));
  const dir = path.join(dataDir, "mailboxes", "localhost", "alice", "new");
  const text = fs.readFileSync(path.join(dir, fs.readdirSync(dir)[0]!), "utf8");
  assert.match(text, /\nSubject: Delayed Mail \(still being retried\)\n/);
  assert.match(text, /\nAction: delayed\n/);
  assert.match(text, /\nStatus: 4\.2\.0\n/);
  assert.match(text, /\nWill-Retry-Until: .*2030/);
});
