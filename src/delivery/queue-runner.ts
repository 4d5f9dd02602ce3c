// Works the queue (issue 9): finds recipients whose attempt is due, groups them by domain, asks the
// router where each domain's mail goes, and tries the hosts in order, every address of a host, until
// one answers (RFC 5321 §5.1); records each recipient's result durably (queue/queue-state.ts), plans
// the next attempt of the deferred ones (retry_schedule) or fails them past max_queue_age, and removes
// entries whose recipients are all final. One log line per recipient and attempt, Postfix-style.
// Talks to the world only through the Router and Transport interfaces it is given.
import type { Logger } from "../core/log.js";
import { reply, replyText, type Reply } from "../core/reply.js";
import { wantsNotice, type RecipientState } from "../queue/queue-entry.js";
import { dueRecipients, giveUp, removeEntries, RETURNED, scanQueue, type QueuedMessage } from "../queue/queue-scan.js";
import { isFinal, type AttemptOutcome, type QueueState, type RecipientStatus } from "../queue/queue-state.js";
import { nextAttempt, type RetryPolicy } from "../queue/retry-schedule.js";

/**
 * Where a domain's mail goes: hosts to try in order, each with its addresses, on one port and with one
 * profile ("mx": opportunistic TLS, no AUTH; "smarthost": the configured security and credentials);
 * or a verdict.
 */
export type Destination =
  | {
      readonly kind: "hosts";
      readonly port: number;
      readonly profile: "mx" | "smarthost";
      readonly hosts: readonly { readonly host: string; readonly addresses: readonly string[] }[];
    }
  | { readonly kind: "bounce"; readonly status: string; readonly reason: string }
  | { readonly kind: "defer"; readonly status: string; readonly reason: string };

export interface Router {
  route(domain: string): Promise<Destination>;
}

/** What one delivery attempt to one address gave: a reply per recipient, or no session at all. */
export type AttemptResult =
  | { readonly kind: "replies"; readonly replies: ReadonlyMap<string, Reply> }
  | { readonly kind: "unreachable"; readonly reason: string };

export interface Target {
  readonly host: string;
  readonly address: string;
  readonly port: number;
  readonly profile: "mx" | "smarthost";
}

export interface Transport {
  attempt(target: Target, message: QueuedMessage, recipients: readonly string[]): Promise<AttemptResult>;
}

/** A recipient that failed for good in this run, for the sender's bounce (RFC 3464). */
export interface FailedRecipient {
  readonly to: string;
  readonly reply: Reply;
  /** The host whose reply it is ("mx.example.org[192.0.2.1]"), or "none" for a routing verdict. */
  readonly relay: string;
}

/** Sends the bounce for recipients that failed (the sender is not the null sender). */
export interface Bounces {
  bounce(m: QueuedMessage, failed: readonly FailedRecipient[]): Promise<void>;
  /** A "delayed" notice (RFC 3464 Action: delayed) for recipients still being retried until `until`. */
  delayed?(m: QueuedMessage, waiting: readonly FailedRecipient[], until: Date): Promise<void>;
}

export interface RunnerDeps {
  readonly queueDir: string;
  readonly state: QueueState;
  readonly router: Router;
  readonly transport: Transport;
  readonly retry: RetryPolicy;
  /** Seconds after arrival when the sender of a still-deferred message is told, once; 0 = never. */
  readonly delayWarning?: number;
  /** Deliveries at once, in all and to one destination (domain); default one at a time. */
  readonly concurrency?: Concurrency;
  /** Without it, failures are only logged (tests; the wiring always gives one). */
  readonly bounces?: Bounces;
  readonly log: Logger;
  readonly now?: () => number;
}

export interface Concurrency {
  readonly total: number;
  readonly perDestination: number;
}

/**
 * Runs every job, at most `limits.total` at once and at most `limits.perDestination` with the same
 * key; jobs of one key keep their order. Resolves when all are done (a job's error is its own).
 */
export async function runLimited<T>(jobs: readonly T[], keyOf: (job: T) => string, limits: Concurrency, run: (job: T) => Promise<void>, onError: (err: unknown) => void = () => undefined): Promise<void> {
  const waiting = [...jobs];
  const active = new Map<string, number>();
  let running = 0;
  await new Promise<void>((resolve) => {
    const start = () => {
      if (waiting.length === 0 && running === 0) return resolve();
      for (let i = 0; i < waiting.length && running < limits.total; ) {
        const job = waiting[i]!;
        const key = keyOf(job);
        if ((active.get(key) ?? 0) >= limits.perDestination) {
          i++;
          continue;
        }
        waiting.splice(i, 1);
        running++;
        active.set(key, (active.get(key) ?? 0) + 1);
        void run(job)
          .catch(onError)
          .finally(() => {
            running--;
            active.set(key, active.get(key)! - 1);
            start();
          });
      }
    };
    start();
  });
}

export interface RunSummary {
  readonly attempted: number;
  readonly delivered: number;
  readonly deferred: number;
  readonly failed: number;
  readonly removed: number;
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf("@") + 1).toLowerCase();
}

/** Recipients at this domain (and under it, with subdomains); every recipient when domain is undefined. */
function inDomain(domain: string | undefined, subdomains: boolean): (to: string) => boolean {
  const d = domain?.toLowerCase();
  return (to) => d === undefined || domainOf(to) === d || (subdomains && domainOf(to).endsWith(`.${d}`));
}

export class QueueRunner {
  /** Messages with deliveries in progress, and how many (one job per domain of a message can run at once). */
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly deps: RunnerDeps) {}

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** One pass over the queue: every due recipient gets one attempt (optionally only this domain's). */
  async runOnce(onlyDomain?: string): Promise<RunSummary> {
    const { queueDir, state, log } = this.deps;
    const summary = { attempted: 0, delivered: 0, deferred: 0, failed: 0, removed: 0 };
    const messages = await scanQueue(queueDir, state, (file, err) => log.error({ file, err }, "queue envelope unreadable; skipped"));
    // One job per message and domain (one transaction there); jobs run in parallel within the limits.
    const jobs: { m: QueuedMessage; domain: string; recipients: RecipientStatus[] }[] = [];
    const wanted = inDomain(onlyDomain, false);
    for (const m of messages) {
      const byDomain = new Map<string, RecipientStatus[]>();
      for (const r of dueRecipients(m, this.now())) if (wanted(r.to)) byDomain.set(domainOf(r.to), [...(byDomain.get(domainOf(r.to)) ?? []), r]);
      for (const [domain, recipients] of byDomain) jobs.push({ m, domain, recipients });
    }
    const deferredBy = new Map<QueuedMessage, FailedRecipient[]>();
    const pending = new Map<QueuedMessage, number>();
    for (const j of jobs) pending.set(j.m, (pending.get(j.m) ?? 0) + 1);
    await runLimited(jobs, (j) => j.domain, this.deps.concurrency ?? { total: 1, perDestination: 1 }, async ({ m, domain, recipients }) => {
      const id = m.envelope.id;
      this.inFlight.set(id, (this.inFlight.get(id) ?? 0) + 1);
      try {
        const { outcomes, relay } = await this.deliverDomain(m, domain, recipients.map((r) => r.to), new Map(recipients.map((r) => [r.to, r.attempts])));
        const failed = outcomes.filter((o) => o.state.kind === "failed");
        // The bounce owed for these is recorded with them; it is sent at the end of the run.
        await state.recordSoon(outcomes, m.envelope.sender === "" ? [] : failed.filter((o) => wantsNotice(m.envelope, o.to, "FAILURE")).map((o) => ({ to: o.to, relay })));
        if (m.envelope.sender === "" && failed.length)
          log.info({ id, failed: failed.map((f) => f.to) }, "undeliverable mail from the null sender dropped: no bounce for a bounce");
        for (const o of outcomes) {
          summary.attempted++;
          if (o.state.kind === "delivered") summary.delivered++;
          else if (o.state.kind === "failed") summary.failed++;
          else if (o.state.kind === "deferred") {
            summary.deferred++;
            deferredBy.set(m, [...(deferredBy.get(m) ?? []), { to: o.to, reply: o.state.reply, relay }]);
          }
        }
        const left = pending.get(m)! - 1;
        pending.set(m, left);
        if (left === 0) await this.warnIfDelayed(m, deferredBy.get(m) ?? []);
      } finally {
        const n = this.inFlight.get(id)! - 1;
        if (n === 0) this.inFlight.delete(id);
        else this.inFlight.set(id, n);
      }
    }, (err) => log.error({ err }, "delivery job failed"));
    // Bounces owed (failed in this run, in a run a crash cut short, or returned by the administrator):
    // one per message, for every recipient owed one.
    const owed = state.noticeIds();
    for (const m of messages) if (owed.has(m.envelope.id)) await this.sendNotices(m);
    // Entries finished now or by an earlier run (a crash after the last record) go, all at once. The
    // envelopes read at the start are enough: only their rows changed (entries queued since are new).
    const stillOwed = state.noticeIds();
    const finished = messages.filter((m) => !stillOwed.has(m.envelope.id) && state.status(m.envelope).every(isFinal)).map((m) => m.envelope.id);
    await removeEntries(queueDir, state, finished);
    summary.removed += finished.length;
    return summary;
  }

  /**
   * `petrel queue bounce ID`: every recipient still waiting fails now, without another attempt, and
   * the sender gets the usual bounce (at the end of the next run, which the caller starts). Refused
   * while a delivery of the message is in flight: its result would race the administrator's.
   */
  returnToSender(m: QueuedMessage): { kind: "returned"; recipients: string[] } | { kind: "busy" } {
    if (this.inFlight.has(m.envelope.id)) return { kind: "busy" };
    const recipients = giveUp(this.deps.state, m);
    for (const to of recipients)
      this.deps.log.info({ id: m.envelope.id, to, relay: "none", dsn: RETURNED.enhanced, status: "bounced", reply: replyText(RETURNED) }, "delivery");
    return { kind: "returned", recipients };
  }

  /** queue delete/bounce wait for a delivery of the message in progress: resolves true once no delivery of this message is in progress, false after `timeoutMs`. */
  async idle(id: string, timeoutMs: number): Promise<boolean> {
    for (const end = Date.now() + timeoutMs; this.inFlight.has(id); ) {
      if (Date.now() >= end) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
    return true;
  }

  /** Epoch ms of the earliest planned attempt of any recipient, or null when the queue is empty. */
  async nextDue(): Promise<number | null> {
    let due: number | null = null;
    for (const m of await scanQueue(this.deps.queueDir, this.deps.state))
      for (const r of m.recipients) if (!isFinal(r) && r.nextAttempt !== null && (due === null || r.nextAttempt < due)) due = r.nextAttempt;
    // A bounce that could not be queued is tried again within a minute.
    if (this.deps.state.noticeIds().size > 0) due = Math.min(due ?? Infinity, this.now() + 60_000);
    return due;
  }

  /** Messages with recipients still to deliver at this domain (or under it), for ETRN's count. */
  async waitingFor(domain: string, subdomains: boolean): Promise<number> {
    const matches = inDomain(domain, subdomains);
    return (await scanQueue(this.deps.queueDir, this.deps.state)).filter((m) => m.recipients.some((r) => !isFinal(r) && matches(r.to))).length;
  }

  /**
   * `queue flush` and ETRN: every recipient still waiting (of this domain, or under it) becomes due
   * now; the next run tries them. Returns how many messages that concerns.
   */
  async flush(domain?: string, subdomains = false): Promise<number> {
    const matches = inDomain(domain, subdomains);
    let messages = 0;
    for (const m of await scanQueue(this.deps.queueDir, this.deps.state)) {
      const waiting = m.recipients.filter((r) => !isFinal(r) && matches(r.to)).map((r) => r.to);
      if (waiting.length === 0) continue;
      this.deps.state.reschedule(m.envelope.id, waiting, this.now());
      messages++;
    }
    return messages;
  }

  /**
   * The sender learns of recipients that failed for good: one bounce for all those still owed one.
   * The failures were recorded before (with what is owed), so a crash here sends the bounce in a later
   * run and never the message twice; a crash between queueing the bounce and forgetting it sends the
   * bounce twice. A bounce that cannot be queued stays owed (the next run tries again).
   */
  private async sendNotices(m: QueuedMessage): Promise<void> {
    const { state, log } = this.deps;
    const id = m.envelope.id;
    const owed = new Map(state.notices(id).map((n) => [n.to, n.relay]));
    const failed: FailedRecipient[] = [];
    for (const r of state.status(m.envelope)) {
      const relay = owed.get(r.to);
      if (relay !== undefined && r.state.kind === "failed") failed.push({ to: r.to, reply: r.state.reply, relay });
    }
    if (failed.length === 0 || m.envelope.sender === "" || !this.deps.bounces) {
      state.noticesSent(id);
      return;
    }
    try {
      await this.deps.bounces.bounce(m, failed);
      state.noticesSent(id);
    } catch (err) {
      log.error({ err, id, sender: m.envelope.sender }, "cannot queue the bounce; trying again in the next run");
    }
  }

  /**
   * delivery.delay_warning (Postfix's delay_warning_time): once a message has waited that long, its
   * sender is told once which recipients are still being retried, and until when. RFC 3461: only for
   * recipients whose NOTIFY includes DELAY, or that gave no NOTIFY; never for the null sender.
   */
  private async warnIfDelayed(m: QueuedMessage, deferred: readonly FailedRecipient[]): Promise<void> {
    const warnAfter = (this.deps.delayWarning ?? 0) * 1000;
    const { envelope } = m;
    if (warnAfter <= 0 || deferred.length === 0 || envelope.sender === "" || !this.deps.bounces?.delayed) return;
    const arrived = Date.parse(envelope.received);
    if (this.now() - arrived < warnAfter || this.deps.state.wasWarned(envelope.id)) return;
    const wanted = deferred.filter((d) => wantsNotice(envelope, d.to, "DELAY"));
    this.deps.state.markWarned(envelope.id);
    if (wanted.length === 0) return;
    try {
      await this.deps.bounces.delayed(m, wanted, new Date(arrived + this.deps.retry.maxQueueAge * 1000));
    } catch (err) {
      this.deps.log.error({ err, id: envelope.id }, "cannot queue the delay notice");
    }
  }

  /** Routes one domain and tries its hosts; returns one outcome per recipient and who answered. */
  private async deliverDomain(m: QueuedMessage, domain: string, recipients: readonly string[], attempts: ReadonlyMap<string, number>): Promise<{ outcomes: AttemptOutcome[]; relay: string }> {
    const started = this.now();
    const dest = await this.deps.router.route(domain);
    const finish = (replies: ReadonlyMap<string, Reply>, relay: string) => ({
      relay,
      outcomes: recipients.map((to) => this.outcome(m, to, replies.get(to) ?? reply(451, "4.3.0", "no reply for this recipient"), (attempts.get(to) ?? 0) + 1, relay, started)),
    });
    if (dest.kind !== "hosts") {
      const r = reply(dest.kind === "bounce" ? 550 : 451, dest.status, dest.reason);
      return finish(new Map(recipients.map((to) => [to, r])), "none");
    }
    let last = "no mail host has an address";
    for (const h of dest.hosts)
      for (const address of h.addresses) {
        const result = await this.deps.transport.attempt({ host: h.host, address, port: dest.port, profile: dest.profile }, m, recipients);
        if (result.kind === "replies") return finish(result.replies, `${h.host}[${address}]`);
        last = `${h.host}[${address}]: ${result.reason}`;
        this.deps.log.info({ id: m.envelope.id, domain, relay: `${h.host}[${address}]`, reason: result.reason }, "mail host unreachable; trying the next");
      }
    const r = reply(451, "4.4.1", `connection failed: ${last}`);
    return finish(new Map(recipients.map((to) => [to, r])), "none");
  }

  /** A reply becomes a state: 2xx delivered, 5xx failed, 4xx deferred (or failed when too old). */
  private outcome(m: QueuedMessage, to: string, r: Reply, attempts: number, relay: string, started: number): AttemptOutcome {
    const id = m.envelope.id;
    let state: RecipientState;
    let next: number | null = null;
    if (r.code >= 200 && r.code < 300) state = { kind: "delivered", reply: r };
    else if (r.code >= 500) state = { kind: "failed", reply: r };
    else {
      const plan = nextAttempt(this.deps.retry, attempts, Date.parse(m.envelope.received), this.now());
      // Past max_queue_age the recipient fails with its last reply (RFC 3464: Action failed, the 4.x.x
      // status the bounce reports as "gave up"), and is not tried again.
      if (plan.kind === "expired") state = { kind: "failed", reply: r };
      else {
        state = { kind: "deferred", reply: r };
        next = plan.at;
      }
    }
    const status = state.kind === "delivered" ? "sent" : state.kind === "failed" ? "bounced" : "deferred";
    const delay = ((this.now() - Date.parse(m.envelope.received)) / 1000).toFixed(1);
    this.deps.log.info(
      { id, to, relay, delay, attempt_ms: this.now() - started, dsn: r.enhanced ?? `${String(r.code)[0]}.0.0`, status: status === "bounced" && r.code < 500 ? "bounced (expired)" : status, reply: replyText(r) },
      "delivery",
    );
    return { id, to, state, nextAttempt: next };
  }
}
