import { test } from "node:test";
import assert from "node:assert/strict";
import { classify, tokenProbability, verdictFor, type TokenCounts } from "./classifier.js";
import { tokenize } from "./tokenizer.js";
import { GTUBE, hamMessage, spamMessage } from "../../testing/spam-fixtures.js";

const params = { s: 0.45, x: 0.5, minDeviation: 0.1, maxDiscriminators: 150 };

test("Robinson's f(w): a token seen once says little, a token seen often says what its counts say", () => {
  const totals = { spam: 100, ham: 100 };
  // p = 1, n = 1: (0.45 * 0.5 + 1) / 1.45
  assert.equal(tokenProbability({ spam: 1, ham: 0 }, totals, params), (0.45 * 0.5 + 1) / 1.45);
  assert.ok(tokenProbability({ spam: 50, ham: 0 }, totals, params) > 0.99);
  assert.equal(tokenProbability({ spam: 10, ham: 10 }, totals, params), 0.5);
  // Ratios, not raw counts: 10 of 10 spam vs 10 of 100 ham is a spam token.
  assert.ok(tokenProbability({ spam: 10, ham: 10 }, { spam: 10, ham: 100 }, params) > 0.9);
  assert.equal(tokenProbability({ spam: 0, ham: 0 }, totals, params), 0.5);
});

test("verdict bands: at the spam cutoff is spam, at the ham cutoff ham, between unsure", () => {
  const cutoffs = { ham: 0.2, spam: 0.9 };
  assert.equal(verdictFor(0.9, cutoffs), "spam");
  assert.equal(verdictFor(0.2, cutoffs), "ham");
  assert.equal(verdictFor(0.5, cutoffs), "unsure");
});

test("only tokens far enough from 0.5 count, and at most maxDiscriminators of them", () => {
  const counts = new Map<string, TokenCounts>([["a", { spam: 9, ham: 0 }], ["b", { spam: 5, ham: 5 }], ["c", { spam: 0, ham: 9 }], ["d", { spam: 8, ham: 0 }]]);
  const r = classify(["a", "b", "c", "d", "unseen"], counts, { spam: 10, ham: 10 }, { ...params, maxDiscriminators: 2 }, { ham: 0.2, spam: 0.9 });
  assert.deepEqual(r.clues.map((c) => c.token).sort(), ["a", "c"]);
});

test("trained on a small fixture set, the classifier separates obvious spam (GTUBE too) from ham", async () => {
  const counts = new Map<string, { spam: number; ham: number }>();
  const totals = { spam: 0, ham: 0 };
  const train = async (raw: string, cls: "spam" | "ham"): Promise<void> => {
    totals[cls]++;
    for (const t of await tokenize(Buffer.from(raw))) {
      const c = counts.get(t) ?? { spam: 0, ham: 0 };
      c[cls]++;
      counts.set(t, c);
    }
  };
  for (let i = 0; i < 20; i++) {
    await train(spamMessage(i), "spam");
    await train(hamMessage(i), "ham");
  }
  const cutoffs = { ham: 0.2, spam: 0.9 };
  const score = async (raw: string) => classify(await tokenize(Buffer.from(raw)), counts, totals, params, cutoffs);
  for (let i = 100; i < 110; i++) {
    assert.equal((await score(spamMessage(i))).verdict, "spam", `spam fixture ${i}`);
    assert.equal((await score(hamMessage(i))).verdict, "ham", `ham fixture ${i}`);
  }
  const gtube = await score(`From: someone@else.example\r\nSubject: test\r\n\r\nThis is the GTUBE, a test.\r\n${GTUBE}\r\n`);
  assert.ok(gtube.score > 0.5, `GTUBE scored ${gtube.score}`);
  assert.ok(gtube.clues.some((c) => c.token.startsWith("skip:x")), "the GTUBE string is a long-word token");
});
