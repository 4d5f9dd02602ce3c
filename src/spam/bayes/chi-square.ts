// Fisher's method of combining token probabilities through the chi-square distribution, as Gary
// Robinson proposed for spam filtering ("A Statistical Approach to the Spam Problem", 2003) and
// SpamBayes and bogofilter use it. Pure arithmetic: trusts its inputs to be probabilities in (0, 1).

/**
 * The chi-square survival function Q(x2 | v) = P(X >= x2) for an even number of degrees of freedom v,
 * by its closed form: e^-m * sum_{i < v/2} m^i / i!  with m = x2 / 2.
 */
export function chi2Q(x2: number, v: number): number {
  if (!Number.isInteger(v) || v <= 0 || v % 2 !== 0) throw new RangeError(`chi2Q needs an even positive number of degrees of freedom, not ${v}`);
  const m = x2 / 2;
  let term = Math.exp(-m);
  let sum = term;
  for (let i = 1; i < v / 2; i++) {
    term *= m / i;
    sum += term;
  }
  return Math.min(sum, 1);
}

export interface Combined {
  /** 0 = certainly ham, 1 = certainly spam, 0.5 = no opinion (or evidence both ways). */
  readonly score: number;
  /** How strongly the probabilities say spam (1 - Q of the ham-side product), 0..1. */
  readonly spamness: number;
  /** How strongly they say ham, 0..1. */
  readonly hamness: number;
}

/**
 * Combines token spam probabilities f(w) into one score: H from -2 ln prod f(w), S from
 * -2 ln prod (1 - f(w)), each against chi-square with 2n degrees of freedom; score = (1 + H - S) / 2.
 * Sums of logarithms, so hundreds of tiny probabilities do not underflow.
 */
export function fisherCombine(probabilities: readonly number[]): Combined {
  const n = probabilities.length;
  if (n === 0) return { score: 0.5, spamness: 0, hamness: 0 };
  let lnF = 0; // ln prod f(w)
  let lnNotF = 0; // ln prod (1 - f(w))
  for (const p of probabilities) {
    lnF += Math.log(p);
    lnNotF += Math.log(1 - p);
  }
  // Small f(w) (hammy tokens) make -2 ln prod f(w) large and its Q small: 1 - Q measures ham evidence.
  const hamness = 1 - chi2Q(-2 * lnF, 2 * n);
  const spamness = 1 - chi2Q(-2 * lnNotF, 2 * n);
  return { score: (1 + spamness - hamness) / 2, spamness, hamness };
}
