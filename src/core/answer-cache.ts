// Answers about a key (a client IP) shared for a while: callers asking while a lookup runs share it, a
// finished answer worth keeping is reused until it is `ttlMs` old, at most `max` keys are remembered (the
// oldest goes first). Used where every connection would otherwise cost DNS queries (reverse DNS, DNS lists).

export class AnswerCache<T> {
  private readonly entries = new Map<string, { readonly answer: Promise<T>; expires: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly max: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The kept or running answer for `key`, else `lookup()`'s; kept once settled only when `keep` says so. */
  get(key: string, lookup: () => Promise<T>, keep: (answer: T) => boolean): Promise<T> {
    const hit = this.entries.get(key);
    if (hit && hit.expires > this.now()) return hit.answer;
    if (hit) this.entries.delete(key);
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    const entry = { answer: lookup(), expires: Infinity };
    this.entries.set(key, entry);
    const settle = (kept: boolean) => {
      if (kept) entry.expires = this.now() + this.ttlMs;
      else if (this.entries.get(key) === entry) this.entries.delete(key);
    };
    entry.answer.then((a) => settle(keep(a)), () => settle(false));
    return entry.answer;
  }
}
