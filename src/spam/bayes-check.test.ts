import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { silentLogger } from "../core/log.js";
import type { CheckContext, CheckResult, StagedMessage } from "../trust/message-check.js";
import { BayesCheck } from "./bayes-check.js";
import { DEFAULT_SETTINGS } from "./bayes/bayes-filter.js";
import { trainMessage } from "./bayes/bayes-filter.js";
import { bayesDatabasePath, TokenStore } from "./bayes/token-store.js";
import { GTUBE, hamMessage, spamMessage } from "../testing/spam-fixtures.js";

const settings = { ...DEFAULT_SETTINGS, minTrained: 10 };

function ctx(over: Partial<CheckContext> = {}): CheckContext {
  return { id: "Q1", peerAddress: "192.0.2.9", helo: "mail.example", ptrName: null, receivedFrom: "from mail.example (unknown [192.0.2.9])", sender: "x@deals.example", recipients: ["alice@example.test"], authenticated: false, tls: false, ...over };
}

function staged(raw: string): StagedMessage {
  return { size: Buffer.byteLength(raw), open: () => Readable.from([Buffer.from(raw)]) };
}

async function run(check: BayesCheck, raw: string, c: CheckContext = ctx()): Promise<CheckResult> {
  const r = check.start(c);
  assert.ok(r, "the check applies");
  r.write(Buffer.from(raw));
  return r.finish(staged(raw));
}

async function trained(dataDir: string, user: string | null, count: number): Promise<void> {
  const store = TokenStore.openForTraining(bayesDatabasePath(dataDir, user));
  try {
    for (let i = 0; i < count; i++) {
      await trainMessage(store, Buffer.from(spamMessage(i)), "spam");
      await trainMessage(store, Buffer.from(hamMessage(i)), "ham");
    }
  } finally {
    store.close();
  }
}

const tempDir = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "petrel-bayes-check-"));

test("no database, or too few trained messages: no verdict, tagged untrained", async () => {
  const dir = tempDir();
  const check = new BayesCheck({ dataDir: dir, scope: "global", settings, log: silentLogger() });
  const untrainedResult = { headers: ["X-Spam-Status: Unknown, engine=bayes (untrained)\r\n"], verdict: { kind: "accept" } };
  assert.deepEqual(await run(check, spamMessage(50)), untrainedResult);
  await trained(dir, null, 9);
  assert.deepEqual(await run(check, spamMessage(50)), untrainedResult);
  check.close();
});

test("trained: spam (GTUBE too) goes to Junk with X-Spam-Status Yes, ham is delivered with No", async () => {
  const dir = tempDir();
  await trained(dir, null, 20);
  const check = new BayesCheck({ dataDir: dir, scope: "global", settings, log: silentLogger() });
  try {
    const spam = await run(check, spamMessage(60));
    assert.equal(spam.verdict.kind, "junk");
    assert.match(spam.headers[0]!, /^X-Spam-Status: Yes, score=(0\.9\d{3}|1\.0000) required=0\.9000 engine=bayes class=spam\r\n$/);
    assert.match(spam.headers[1]!, /^X-Spam-Score: (0\.9\d{3}|1\.0000)\r\n$/);
    const gtube = await run(check, `From: "Deals" <promo@deals.example>\r\nSubject: FREE PRIZE!!!\r\n\r\n${GTUBE}\r\n`);
    assert.equal(gtube.verdict.kind, "junk", gtube.headers.join(""));
    const ham = await run(check, hamMessage(61));
    assert.deepEqual(ham.verdict, { kind: "accept" });
    assert.match(ham.headers[0]!, /^X-Spam-Status: No, score=0\.0\d{3} required=0\.9000 engine=bayes class=ham\r\n$/);
  } finally {
    check.close();
  }
});

test("authenticated submission is not checked", () => {
  const check = new BayesCheck({ dataDir: tempDir(), scope: "global", settings, log: silentLogger() });
  assert.equal(check.start(ctx({ authenticated: true })), null);
});

test("per-user scope: each recipient's own database; junk only when every trained one says spam", async () => {
  const dir = tempDir();
  await trained(dir, "alice@example.test", 20);
  const check = new BayesCheck({ dataDir: dir, scope: "per-user", settings, log: silentLogger() });
  try {
    assert.equal((await run(check, spamMessage(70), ctx({ recipients: ["Alice@Example.Test"] }))).verdict.kind, "junk");
    // bob has no database: his copy alone gets no verdict.
    assert.match((await run(check, spamMessage(70), ctx({ recipients: ["bob@example.test"] }))).headers[0]!, /^X-Spam-Status: Unknown, engine=bayes \(untrained\)/);
    // bob trained the other way round: the lenient database wins for the shared verdict.
    const store = TokenStore.openForTraining(bayesDatabasePath(dir, "bob@example.test"));
    for (let i = 0; i < 20; i++) {
      await trainMessage(store, Buffer.from(spamMessage(i)), "ham");
      await trainMessage(store, Buffer.from(hamMessage(i)), "spam");
    }
    store.close();
    const both = await run(check, spamMessage(70), ctx({ recipients: ["alice@example.test", "bob@example.test"] }));
    assert.deepEqual(both.verdict, { kind: "accept" });
  } finally {
    check.close();
  }
});

test("a read error is logged and the message accepted, tagged Unknown (error)", async () => {
  const dir = tempDir();
  await trained(dir, null, 20);
  const check = new BayesCheck({ dataDir: dir, scope: "global", settings, log: silentLogger() });
  const r = check.start(ctx())!;
  const broken: StagedMessage = { size: 10, open: () => new Readable({ read() { this.destroy(new Error("EIO")); } }) };
  assert.deepEqual(await r.finish(broken), { headers: ["X-Spam-Status: Unknown, engine=bayes (error)\r\n"], verdict: { kind: "accept" } });
  check.close();
});

test("fromConfig: bayes = false gives no check; the verdict follows [spam] bayes_spam_cutoff", async () => {
  const dir = tempDir();
  const spam = { bayes: true, bayes_scope: "global", bayes_spam_cutoff: 0.9, bayes_ham_cutoff: 0.001, bayes_min_trained: 10 } as const;
  assert.equal(BayesCheck.fromConfig({ data_dir: dir, spam: { ...spam, bayes: false } }, silentLogger()), null);
  await trained(dir, null, 20);
  // Half spam, half ham: a score well inside (0, 1).
  const mixed = spamMessage(80).replace(/\r\n\r\n/, `\r\n\r\n${hamMessage(80).split("\r\n\r\n")[1]}`);
  const score = async (cutoff: number): Promise<CheckResult> => {
    const check = BayesCheck.fromConfig({ data_dir: dir, spam: { ...spam, bayes_spam_cutoff: cutoff } }, silentLogger())!;
    try {
      return await run(check, mixed);
    } finally {
      check.close();
    }
  };
  const s = Number(/score=([\d.]+)/.exec((await score(0.999)).headers[0]!)![1]);
  assert.ok(s > 0.01 && s < 0.99, `mixed message scored ${s}`);
  assert.equal((await score(s - 0.005)).verdict.kind, "junk");
  const below = await score(s + 0.005);
  assert.deepEqual(below.verdict, { kind: "accept" });
  assert.match(below.headers[0]!, /^X-Spam-Status: No, .* engine=bayes class=unsure\r\n$/);
});

test("our own Received line counts: a client without reverse DNS scores as the trained mail that had none", async () => {
  const dir = tempDir();
  const store = TokenStore.openForTraining(bayesDatabasePath(dir, null));
  try {
    // Spam came from clients without a PTR name, ham from forward-confirmed ones; otherwise alike.
    for (let i = 0; i < 20; i++) {
      await trainMessage(store, Buffer.from(`Received: from x (unknown [192.0.2.9])\r\n\tby mx.petrel.test; x\r\n${hamMessage(i)}`), "spam");
      await trainMessage(store, Buffer.from(`Received: from x (x.example.net [192.0.2.9])\r\n\tby mx.petrel.test; x\r\n${hamMessage(i + 100)}`), "ham");
    }
  } finally {
    store.close();
  }
  const check = new BayesCheck({ dataDir: dir, scope: "global", settings, log: silentLogger() });
  try {
    const score = async (receivedFrom: string) => Number(/score=([\d.]+)/.exec((await run(check, hamMessage(300), ctx({ receivedFrom }))).headers[0]!)![1]);
    const none = await score("from x (unknown [192.0.2.9])");
    const confirmed = await score("from x (x.example.net [192.0.2.9])");
    assert.ok(none > confirmed + 0.2, `no PTR ${none} vs confirmed ${confirmed}`);
  } finally {
    check.close();
  }
});
