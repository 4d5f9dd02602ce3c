import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { bayesDatabasePath, TokenStore } from "./token-store.js";

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "petrel-bayes-store-"));
}

test("learn counts each token once per message, is idempotent, and moves a message between classes", () => {
  const dir = tempDir();
  const store = TokenStore.openForTraining(bayesDatabasePath(dir, null));
  try {
    assert.equal(store.learn("m1", ["cheap", "pills"], "spam"), "learned");
    assert.equal(store.learn("m2", ["cheap", "meeting"], "ham"), "learned");
    assert.equal(store.learn("m1", ["cheap", "pills"], "spam"), "already");
    assert.deepEqual(store.totals(), { spam: 1, ham: 1 });
    assert.deepEqual(Object.fromEntries(store.counts(["cheap", "pills", "meeting", "unknown"])), {
      cheap: { spam: 1, ham: 1 },
      pills: { spam: 1, ham: 0 },
      meeting: { spam: 0, ham: 1 },
    });
    // A message trained as spam, then as ham (moved out of Junk): the spam counts are taken back.
    assert.equal(store.learn("m1", ["cheap", "pills"], "ham"), "relearned");
    assert.deepEqual(store.totals(), { spam: 0, ham: 2 });
    assert.deepEqual(store.counts(["pills"]).get("pills"), { spam: 0, ham: 1 });
    assert.equal(store.trainedAs("m1"), "ham");
    assert.equal(store.unlearn("m1", ["cheap", "pills"]), true);
    assert.equal(store.unlearn("m1", ["cheap", "pills"]), false);
    assert.deepEqual(store.totals(), { spam: 0, ham: 1 });
    // Tokens no message holds any more are removed, not kept at zero.
    assert.equal(store.counts(["pills"]).size, 0);
  } finally {
    store.close();
  }
});

test("a batch of trainings is one transaction: an error inside rolls all of it back", () => {
  const dir = tempDir();
  const store = TokenStore.openForTraining(bayesDatabasePath(dir, null));
  try {
    assert.throws(() =>
      store.transaction(() => {
        store.learn("a", ["one"], "spam");
        throw new Error("disk on fire");
      }),
    );
    assert.deepEqual(store.totals(), { spam: 0, ham: 0 });
    assert.equal(store.trainedAs("a"), null);
  } finally {
    store.close();
  }
});

test("files are private, reading never creates a database, and a reader sees later training", () => {
  const dir = tempDir();
  const file = bayesDatabasePath(dir, null);
  assert.equal(TokenStore.openForReading(file), null);
  assert.equal(fs.existsSync(path.join(dir, "bayes")), false);
  const writer = TokenStore.openForTraining(file);
  const reader = TokenStore.openForReading(file)!;
  try {
    writer.learn("x", ["token"], "spam");
    assert.deepEqual(reader.totals(), { spam: 1, ham: 0 });
    assert.equal(fs.statSync(path.join(dir, "bayes")).mode & 0o777, 0o700);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  } finally {
    reader.close();
    writer.close();
  }
});

test("per-user database names cannot leave their folder", () => {
  const users = path.join("/d", "bayes", "users");
  assert.equal(bayesDatabasePath("/d", null), path.join("/d", "bayes", "global.db"));
  assert.equal(bayesDatabasePath("/d", "alice@example.test"), path.join(users, "alice@example.test.db"));
  for (const evil of ["../../etc/passwd@x", "./@x", "a/b@c", "..@x", "ä@x"]) {
    const p = bayesDatabasePath("/d", evil);
    assert.equal(path.dirname(p), users, evil);
    assert.ok(!path.basename(p).startsWith("."), evil);
  }
});
