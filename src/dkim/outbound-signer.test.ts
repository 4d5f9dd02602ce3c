// The relay's signing step: which queued messages are signed (by envelope source), one signing shared
// by concurrent attempts, and a failure that sends the message unsigned instead of stopping it.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { DKIM_OVERSIGNED_HEADERS, DKIM_SIGNED_HEADERS } from "../config/schema.js";
import type { QueueEnvelope, QueueSource } from "../queue/queue-entry.js";
import type { QueuedMessage } from "../queue/queue-scan.js";
import { crlfContent } from "../queue/queued-content.js";
import { pythonDkimVerifyAll, txtRecords } from "../testing/dkim-verifiers.js";
import { DkimKeyStore, dnsRecord } from "./dkim-key-store.js";
import { OutboundSigner } from "./outbound-signer.js";

describe("outbound signer", () => {
  let dir: string;
  let keys: DkimKeyStore;
  let records: Map<string, string>;
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: "debug" }, new Writable({ write: (c, _e, done) => (lines.push(JSON.parse(String(c)) as Record<string, unknown>), done()) }));
  let file: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-dkim-out-"));
    keys = new DkimKeyStore(path.join(dir, "dkim"));
    records = txtRecords([dnsRecord(await keys.generate("example.test", { algorithm: "ed25519", selector: "e" }))]);
    file = path.join(dir, "m.eml");
    // As the spool stores it: LF line ends, our Received on top.
    fs.writeFileSync(file, "Received: from client.test by mx.example.test;\n\tMon, 30 Nov 2026 12:00:00 +0000\nFrom: alice@example.test\nSubject: hi\n\nbody\n");
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const message = (id: string, source?: QueueSource): QueuedMessage => {
    const envelope: QueueEnvelope = { version: 2, id, sender: "alice@example.test", received: new Date().toISOString(), recipients: [], ...(source ? { source } : {}) };
    return { envelope, messagePath: file, recipients: [] };
  };
  const signer = (open: (f: string) => AsyncIterable<Buffer> = crlfContent) =>
    new OutboundSigner({ keys, headers: DKIM_SIGNED_HEADERS, oversign: DKIM_OVERSIGNED_HEADERS, open, log });

  test("submission, local (sendmail) and bounces are signed; mail from outside (smtp) and entries without a source are not", async () => {
    const s = signer();
    const content = Buffer.from(fs.readFileSync(file, "latin1").replace(/\n/g, "\r\n"), "latin1");
    const sent = await Promise.all((["submission", "local", "bounce"] as const).map(async (source) => Buffer.concat([await s.fieldsFor(message(`M${source}`, source)), content])));
    assert.deepEqual(await pythonDkimVerifyAll(sent, records), [[true], [true], [true]]);
    assert.equal((await s.fieldsFor(message("Msmtp", "smtp"))).length, 0);
    assert.equal((await s.fieldsFor(message("Mold"))).length, 0);
    assert.ok(lines.some((l) => l.id === "Msubmission" && l.dkim === "signed" && l.domain === "example.test"));
  });

  test("an authenticated user's mail is signed only when its From: domain is the envelope sender's", async () => {
    const s = signer();
    const as = (id: string, sender: string, source: QueueSource): QueuedMessage => ({ ...message(id, source), envelope: { ...message(id, source).envelope, sender } });
    assert.equal((await s.fieldsFor(as("Mother", "mallory@other.test", "submission"))).length, 0);
    assert.ok(lines.some((l) => l.id === "Mother" && l.reason === "the From: domain example.test is not the envelope sender's domain other.test"));
    assert.equal((await s.fieldsFor(as("Mnull", "", "submission"))).length, 0);
    assert.ok((await s.fieldsFor(as("Mcase", "Alice@EXAMPLE.test", "submission"))).length > 0);
    assert.ok((await s.fieldsFor(as("Mcron", "root@mx.example.test", "local"))).length > 0, "sendmail (the administrator) may sign any From: with a key");
  });

  test("concurrent attempts for several domains share one signing; later attempts reuse it", async () => {
    let opens = 0;
    const s = signer((f) => (opens++, crlfContent(f)));
    const m = message("Mshared", "submission");
    const [a, b, c] = await Promise.all([s.fieldsFor(m), s.fieldsFor(m), s.fieldsFor(m)]);
    assert.equal(opens, 1);
    assert.ok(a.length > 0);
    assert.deepEqual([b, c], [a, a]);
    assert.deepEqual(await s.fieldsFor(m), a);
    assert.equal(opens, 1);
  });

  test("a failure while signing sends the message unsigned, logs why, and is tried again next attempt", async () => {
    let fail = true;
    const s = signer((f) => {
      if (fail) return (async function* () { yield Buffer.alloc(0); throw Object.assign(new Error("EIO: i/o error, read"), { code: "EIO" }); })();
      return crlfContent(f);
    });
    const m = message("Mfail", "submission");
    assert.equal((await s.fieldsFor(m)).length, 0);
    assert.ok(lines.some((l) => l.id === "Mfail" && l.dkim === "error" && String(l.err).includes("EIO")));
    fail = false;
    assert.ok((await s.fieldsFor(m)).length > 0);
  });
});
