// Decides when the queue runner runs: at once when something new was queued (the spool's commit, a
// picked-up sendmail message), when asked (ETRN, `petrel queue flush`), and otherwise at the earliest
// planned attempt, looking at least every `idleMs`. One run at a time; a kick during a run starts one
// more right after it. stop() waits for the run in progress. Trusts the runner; owns only timing.

export interface Runs {
  runOnce(onlyDomain?: string): Promise<unknown>;
  /** Epoch ms of the earliest planned attempt, or null when nothing waits. */
  nextDue(): Promise<number | null>;
}

export interface SchedulerOptions {
  /** Longest sleep between looks at the queue (a deferred attempt planned further away is still seen). */
  readonly idleMs: number;
  readonly now?: () => number;
  readonly onError?: (err: unknown) => void;
}

export class QueueScheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again: { all: boolean; domains: Set<string> } = { all: false, domains: new Set() };
  private stopped = false;

  constructor(
    private readonly runs: Runs,
    private readonly opts: SchedulerOptions,
  ) {}

  start(): void {
    this.kick();
  }

  /** Something may be due now: run soon (for one domain only when given). */
  kick(domain?: string): void {
    if (this.stopped) return;
    if (domain === undefined) this.again.all = true;
    else this.again.domains.add(domain);
    if (!this.running) this.running = this.loop();
  }

  /** Stops planning runs and waits for the current one to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private async loop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (!this.stopped && (this.again.all || this.again.domains.size)) {
      const { all, domains } = this.again;
      this.again = { all: false, domains: new Set() };
      try {
        if (all) await this.runs.runOnce();
        else for (const d of domains) await this.runs.runOnce(d);
      } catch (err) {
        this.opts.onError?.(err);
      }
    }
    this.running = null;
    if (!this.stopped) await this.plan();
  }

  /** Sleeps until the earliest planned attempt, or idleMs, whichever comes first. */
  private async plan(): Promise<void> {
    let due: number | null = null;
    try {
      due = await this.runs.nextDue();
    } catch (err) {
      this.opts.onError?.(err);
    }
    if (this.stopped || this.running) return;
    const now = (this.opts.now ?? Date.now)();
    const wait = Math.max(0, Math.min(this.opts.idleMs, due === null ? this.opts.idleMs : due - now));
    this.timer = setTimeout(() => this.kick(), wait);
    this.timer.unref();
  }
}
