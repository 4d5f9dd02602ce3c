// Unit tests of the [spam] block's Bayes keys: defaults, ranges, and the cross-check of the two cutoffs,
// each error naming the key.
import { test } from "node:test";
import assert from "node:assert/strict";
import { validateConfig } from "./load.js";

const spam = (block: Record<string, unknown>) => validateConfig({ spam: block }, null).spam;

test("Bayes defaults: on, one global database, ham at or below 0.1, spam at or above 0.9, 200 of each trained", () => {
  const s = validateConfig({}, null).spam;
  assert.equal(s.bayes, true);
  assert.equal(s.bayes_scope, "global");
  assert.equal(s.bayes_ham_cutoff, 0.1);
  assert.equal(s.bayes_spam_cutoff, 0.9);
  assert.equal(s.bayes_min_trained, 200);
  assert.equal(spam({ bayes_scope: "per-user" }).bayes_scope, "per-user");
});

test("bad Bayes values name the key", () => {
  assert.throws(() => spam({ bayes: "yes" }), /spam\.bayes\b/);
  assert.throws(() => spam({ bayes_scope: "domain" }), /spam\.bayes_scope/);
  assert.throws(() => spam({ bayes_spam_cutoff: 1 }), /spam\.bayes_spam_cutoff/);
  assert.throws(() => spam({ bayes_ham_cutoff: 0 }), /spam\.bayes_ham_cutoff/);
  assert.throws(() => spam({ bayes_min_trained: 0 }), /spam\.bayes_min_trained/);
  assert.throws(() => spam({ bayes_min_trained: 2.5 }), /spam\.bayes_min_trained/);
  assert.throws(() => spam({ bayes_ham_cutoff: 0.95 }), /spam\.bayes_ham_cutoff: bayes_ham_cutoff must be below bayes_spam_cutoff/);
  assert.throws(() => spam({ bayes_ham_cutoff: 0.5, bayes_spam_cutoff: 0.5 }), /must be below/);
});
