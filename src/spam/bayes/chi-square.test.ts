import { test } from "node:test";
import assert from "node:assert/strict";
import { chi2Q, fisherCombine } from "./chi-square.js";

const close = (actual: number, expected: number, tolerance: number): void =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${actual} is not within ${tolerance} of ${expected}`);

test("chi2Q matches the chi-square table", () => {
  // Two degrees of freedom: Q(x) = e^(-x/2) exactly.
  close(chi2Q(3, 2), Math.exp(-1.5), 1e-12);
  // Critical values from any chi-square table (upper tail 0.05 and 0.01).
  close(chi2Q(9.488, 4), 0.05, 1e-4);
  close(chi2Q(18.307, 10), 0.05, 1e-4);
  close(chi2Q(37.566, 20), 0.01, 1e-4);
  close(chi2Q(10, 10), 0.440493, 1e-6);
  assert.equal(chi2Q(0, 6), 1);
  // Far in the tail it neither underflows to NaN nor exceeds 1.
  assert.ok(chi2Q(5000, 300) >= 0 && chi2Q(5000, 300) < 1e-100);
  assert.throws(() => chi2Q(1, 3), RangeError);
});

test("fisherCombine: no clues is 0.5, agreement goes to the ends, and it is symmetric", () => {
  assert.equal(fisherCombine([]).score, 0.5);
  assert.ok(fisherCombine(Array(20).fill(0.99)).score > 0.99);
  assert.ok(fisherCombine(Array(20).fill(0.01)).score < 0.01);
  // Strong evidence both ways is "unsure", not an average that hides it.
  close(fisherCombine([...Array(20).fill(0.99), ...Array(20).fill(0.01)]).score, 0.5, 1e-9);
  const ps = [0.9, 0.2, 0.97, 0.6, 0.85];
  close(fisherCombine(ps).score + fisherCombine(ps.map((p) => 1 - p)).score, 1, 1e-12);
  // Hundreds of tiny probabilities: sums of logarithms, no underflow.
  const many = fisherCombine(Array(1000).fill(1e-6));
  assert.ok(Number.isFinite(many.score) && many.score < 1e-6);
});
