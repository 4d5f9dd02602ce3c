// The Bayes decision for one message: Gary Robinson's f(w) for each token (the token's spam ratio,
// pulled towards x by a prior of strength s so a rarely seen token says little), the tokens farthest
// from 0.5 (at least minDeviation away, at most maxDiscriminators of them) combined by Fisher's
// chi-square method (./chi-square.ts), and the score cut into ham / unsure / spam bands.
// Trusts the counts it is given (token-store.ts); knows nothing of SQLite or MIME.
import { fisherCombine } from "./chi-square.js";

export interface TokenCounts {
  /** Trained spam messages that held the token. */
  readonly spam: number;
  /** Trained ham messages that held it. */
  readonly ham: number;
}

/** Messages trained so far, per class. */
export interface TrainedTotals {
  readonly spam: number;
  readonly ham: number;
}

export interface BayesParams {
  /** Robinson's s: how many messages' worth of weight the prior x has. */
  readonly s: number;
  /** Robinson's x: the probability of a token never seen. */
  readonly x: number;
  /** Tokens with |f(w) - 0.5| below this are ignored (SpamBayes' minimum_prob_strength, bogofilter's min_dev). */
  readonly minDeviation: number;
  /** At most this many of the most extreme tokens are combined. */
  readonly maxDiscriminators: number;
}

/**
 * Chosen by 5-fold cross-validation inside the training half of the SpamAssassin corpus, never the test
 * half (docs/benchmark-2026-11-30-spam.md, scripts/bench-spam.mjs --cv). SpamBayes' defaults are
 * s 0.45, x 0.5, 0.1, 150; bogofilter's 0.0178, 0.52, 0.375, no limit. With the 0.375 deviation floor
 * few tokens pass, so the limit (MAX_TOKENS of the tokenizer) never bites.
 */
export const DEFAULT_PARAMS: BayesParams = { s: 0.1, x: 0.52, minDeviation: 0.375, maxDiscriminators: 5000 };

export type BayesClass = "ham" | "unsure" | "spam";

/** A score below `ham` is ham, above `spam` spam, anything between unsure. */
export interface Cutoffs {
  readonly ham: number;
  readonly spam: number;
}

export interface Clue {
  readonly token: string;
  readonly probability: number;
}

export interface Classification {
  readonly score: number;
  readonly verdict: BayesClass;
  /** The tokens that decided, most extreme first. */
  readonly clues: readonly Clue[];
}

const FLOOR = 1e-6;

/** Robinson's f(w) = (s*x + n*p(w)) / (s + n), p(w) the token's spam ratio share, n its message count. */
export function tokenProbability(counts: TokenCounts, totals: TrainedTotals, params: BayesParams): number {
  const n = counts.spam + counts.ham;
  if (n === 0) return params.x;
  const spamRatio = counts.spam / Math.max(totals.spam, 1);
  const hamRatio = counts.ham / Math.max(totals.ham, 1);
  const p = spamRatio / (spamRatio + hamRatio);
  const f = (params.s * params.x + n * p) / (params.s + n);
  return Math.min(Math.max(f, FLOOR), 1 - FLOOR);
}

export function verdictFor(score: number, cutoffs: Cutoffs): BayesClass {
  return score >= cutoffs.spam ? "spam" : score <= cutoffs.ham ? "ham" : "unsure";
}

/** Scores the distinct tokens of one message with the counts looked up for them (absent: never seen). */
export function classify(tokens: readonly string[], counts: ReadonlyMap<string, TokenCounts>, totals: TrainedTotals, params: BayesParams, cutoffs: Cutoffs): Classification {
  const clues: Clue[] = [];
  for (const token of tokens) {
    const c = counts.get(token);
    if (!c) continue;
    const probability = tokenProbability(c, totals, params);
    if (Math.abs(probability - 0.5) >= params.minDeviation) clues.push({ token, probability });
  }
  clues.sort((a, b) => Math.abs(b.probability - 0.5) - Math.abs(a.probability - 0.5) || (a.token < b.token ? -1 : a.token > b.token ? 1 : 0));
  const used = clues.slice(0, params.maxDiscriminators);
  const { score } = fisherCombine(used.map((c) => c.probability));
  return { score, verdict: verdictFor(score, cutoffs), clues: used };
}
