import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BayesLearner, learningFor } from "./learn-from-move.js";
import { bayesDatabasePath, TokenStore } from "./token-store.js";
import { spamMessage } from "../../testing/spam-fixtures.js";

test("which moves teach what", () => {
  assert.equal(learningFor("INBOX", "Junk"), "spam");
  assert.equal(learningFor("INBOX.Work", ".Junk"), "spam");
  assert.equal(learningFor("Junk", "INBOX"), "ham");
  assert.equal(learningFor("INBOX.Junk", "Archive"), "ham");
  assert.equal(learningFor("Junk", "Trash"), null);
  assert.equal(learningFor("INBOX", "Archive"), null);
  assert.equal(learningFor("junk", "JUNK"), null);
});

test("into Junk learns spam; back out learns ham and takes the spam back (per-user database)", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-bayes-move-"));
  const learner = new BayesLearner({ dataDir: dir, scope: "per-user" });
  const message = Buffer.from(spamMessage(3));
  assert.deepEqual(await learner.learnFromMove("alice@example.test", message, "INBOX", "Junk"), { kind: "trained", as: "spam", outcome: "learned" });
  assert.deepEqual(await learner.learnFromMove("alice@example.test", message, "Junk", "Trash"), { kind: "none" });
  assert.deepEqual(await learner.learnFromMove("alice@example.test", message, "Junk", "INBOX"), { kind: "trained", as: "ham", outcome: "relearned" });
  const store = TokenStore.openForReading(bayesDatabasePath(dir, "alice@example.test"))!;
  try {
    assert.deepEqual(store.totals(), { spam: 0, ham: 1 });
  } finally {
    store.close();
  }
  assert.equal(fs.existsSync(bayesDatabasePath(dir, null)), false, "the global database is untouched");
});
