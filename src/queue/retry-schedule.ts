// When a deferred recipient is tried next ([delivery] retry_schedule, seconds between attempts; the last
// interval repeats) and when it has waited long enough to bounce (max_queue_age, counted from arrival;
// Postfix's maximal_queue_lifetime). A small jitter spreads retries of many messages deferred together.
// Trusts its inputs (validated config).

export interface RetryPolicy {
  /** Seconds before attempt 2, 3, …; the last one repeats. */
  readonly schedule: readonly number[];
  /** Seconds from arrival after which a recipient still deferred is bounced. */
  readonly maxQueueAge: number;
  /** Fraction of the interval added at random (0.1 = up to +10 %); default 0. */
  readonly jitter?: number;
}

export type NextAttempt = { readonly kind: "retry"; readonly at: number } | { readonly kind: "expired" };

/**
 * After `attempts` attempts (≥ 1) of a message that arrived at `arrivedAt` (epoch ms), failing at
 * `now`: when to try again, or "expired" when that would be past max_queue_age. A retry that would
 * land after the deadline is moved to the deadline itself, so the last attempt happens at the limit.
 */
export function nextAttempt(policy: RetryPolicy, attempts: number, arrivedAt: number, now: number, random: () => number = Math.random): NextAttempt {
  const deadline = arrivedAt + policy.maxQueueAge * 1000;
  if (now >= deadline) return { kind: "expired" };
  const s = policy.schedule;
  const interval = s[Math.min(Math.max(attempts, 1), s.length) - 1]! * 1000;
  const at = now + interval + Math.floor(interval * (policy.jitter ?? 0) * random());
  return { kind: "retry", at: Math.min(at, deadline) };
}
