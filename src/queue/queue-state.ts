// What has happened to each queued recipient since the spool committed the message: attempts, the next
// attempt, the last reply and a final status, kept in SQLite (data_dir/queue/state.db, WAL, synchronous
// FULL: one fsync per commit) beside the immutable queue files the spool writes (messages/<id>.eml and
// envelopes/<id>.json). A recipient without a row is as the envelope says (scheduled); a row overrides it.
// Measured here (2 cores, ext4): a durable update costs 0.25–0.35 ms as a SQLite transaction against
// 0.8–0.9 ms as write-new + fdatasync + rename + folder fsync of the JSON envelope, and the due-recipient
// query needs no scan of every envelope at start. Trusts the envelope files (the spool wrote them).
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import type { Reply } from "../core/reply.js";
import { openPrivateDatabase } from "../store/private-database.js";
import type { QueueEnvelope, RecipientState } from "./queue-entry.js";

/** One recipient's current state: the envelope's, updated by every attempt since. */
export interface RecipientStatus {
  readonly to: string;
  readonly state: RecipientState;
  readonly attempts: number;
  /** Epoch ms of the next attempt; null when final (delivered or failed). */
  readonly nextAttempt: number | null;
}

/** A failed recipient whose sender is still to be told (the bounce is not yet queued). */
export interface PendingNotice {
  readonly to: string;
  /** Who answered ("mx.example.org[192.0.2.1]"), or "none" for a routing verdict or the administrator. */
  readonly relay: string;
}

/** The result of one delivery attempt for one recipient. */
export interface AttemptOutcome {
  readonly id: string;
  readonly to: string;
  readonly state: RecipientState;
  /** Epoch ms of the next attempt when deferred; null when the state is final. */
  readonly nextAttempt: number | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS recipients (
  id TEXT NOT NULL,
  rcpt TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('scheduled', 'delivered', 'deferred', 'failed')),
  reply TEXT,
  attempts INTEGER NOT NULL,
  next_attempt INTEGER,
  PRIMARY KEY (id, rcpt)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS recipients_due ON recipients (next_attempt) WHERE next_attempt IS NOT NULL;
CREATE TABLE IF NOT EXISTS warned (id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notices (
  id TEXT NOT NULL,
  rcpt TEXT NOT NULL,
  relay TEXT NOT NULL,
  PRIMARY KEY (id, rcpt)
) WITHOUT ROWID;
`;

interface Row {
  readonly rcpt: string;
  readonly state: RecipientState["kind"];
  readonly reply: string | null;
  readonly attempts: number;
  readonly next_attempt: number | null;
}

export class QueueState {
  private readonly db: Database.Database;
  private readonly upsert: Database.Statement;
  private readonly select: Database.Statement;
  private readonly remove: Database.Statement;
  private readonly reschedule1: Database.Statement;
  private readonly unwarn: Database.Statement;
  private readonly addNotice: Database.Statement;
  private readonly dropNotices: Database.Statement;
  private readonly giveUp1: Database.Statement;
  private readonly owedIds: Database.Statement;
  private readonly owed: Database.Statement;

  constructor(queueDir: string) {
    fs.mkdirSync(queueDir, { recursive: true, mode: 0o700 });
    const file = path.join(queueDir, "state.db");
    this.db = openPrivateDatabase(file, "FULL").db;
    this.db.exec(SCHEMA);
    this.upsert = this.db.prepare(
      `INSERT INTO recipients (id, rcpt, state, reply, attempts, next_attempt) VALUES (@id, @rcpt, @state, @reply, 1, @next)
       ON CONFLICT (id, rcpt) DO UPDATE SET state = @state, reply = @reply, attempts = attempts + 1, next_attempt = @next`,
    );
    this.select = this.db.prepare("SELECT rcpt, state, reply, attempts, next_attempt FROM recipients WHERE id = ?");
    this.remove = this.db.prepare("DELETE FROM recipients WHERE id = ?");
    this.unwarn = this.db.prepare("DELETE FROM warned WHERE id = ?");
    this.reschedule1 = this.db.prepare("UPDATE recipients SET next_attempt = ? WHERE id = ? AND rcpt = ? AND state = 'deferred'");
    this.addNotice = this.db.prepare("INSERT OR REPLACE INTO notices (id, rcpt, relay) VALUES (?, ?, ?)");
    this.dropNotices = this.db.prepare("DELETE FROM notices WHERE id = ?");
    this.owedIds = this.db.prepare("SELECT DISTINCT id FROM notices").pluck();
    this.owed = this.db.prepare("SELECT rcpt, relay FROM notices WHERE id = ?").raw();
    this.giveUp1 = this.db.prepare(
      `INSERT INTO recipients (id, rcpt, state, reply, attempts, next_attempt) VALUES (@id, @rcpt, 'failed', @reply, @attempts, NULL)
       ON CONFLICT (id, rcpt) DO UPDATE SET state = 'failed', reply = @reply, next_attempt = NULL`,
    );
  }

  close(): void {
    this.db.close();
  }

  /**
   * Records attempts, all in one durable transaction (one fsync): after a connection delivered to
   * several recipients, their results become final together. Each counts as one more attempt. The
   * failed recipients whose sender must be told are recorded in the same transaction, so a crash
   * before the bounce is queued leaves it to the next run instead of losing it.
   */
  record(outcomes: readonly AttemptOutcome[], notices: readonly PendingNotice[] = []): void {
    this.db.transaction(() => this.recordRows(outcomes, notices))();
  }

  private recordRows(outcomes: readonly AttemptOutcome[], notices: readonly PendingNotice[]): void {
    for (const o of outcomes)
      this.upsert.run({ id: o.id, rcpt: o.to, state: o.state.kind, reply: "reply" in o.state ? JSON.stringify(o.state.reply) : null, next: o.nextAttempt });
    for (const n of notices) this.addNotice.run(outcomes[0]!.id, n.to, n.relay);
  }

  /**
   * record(), group-committed: results that arrive in the same turn of the event loop (jobs of many
   * domains finishing together) share one transaction and its one fsync. Resolves once durable; the
   * caller must not act on the results (bounce, removal) before. Widens no window SMTP does not have:
   * a crash before the commit re-sends what the peer accepted, as a crash before record() would.
   */
  recordSoon(outcomes: readonly AttemptOutcome[], notices: readonly PendingNotice[] = []): Promise<void> {
    return new Promise((resolve, reject) => {
      this.batch.push({ outcomes, notices, resolve, reject });
      if (this.batch.length === 1) setImmediate(() => this.commitBatch());
    });
  }

  private batch: { outcomes: readonly AttemptOutcome[]; notices: readonly PendingNotice[]; resolve: () => void; reject: (err: unknown) => void }[] = [];

  private commitBatch(): void {
    const batch = this.batch;
    this.batch = [];
    try {
      this.db.transaction(() => {
        for (const b of batch) this.recordRows(b.outcomes, b.notices);
      })();
    } catch (err) {
      for (const b of batch) b.reject(err);
      return;
    }
    for (const b of batch) b.resolve();
  }

  /**
   * `petrel queue bounce`: these recipients fail now with `reply` without another attempt, and the
   * ones in `notify` are owed a bounce; one transaction.
   */
  giveUp(id: string, recipients: readonly RecipientStatus[], r: Reply, notify: readonly string[]): void {
    this.db.transaction(() => {
      for (const rc of recipients) this.giveUp1.run({ id, rcpt: rc.to, reply: JSON.stringify(r), attempts: rc.attempts });
      for (const to of notify) this.addNotice.run(id, to, "none");
    })();
  }

  /** Messages owing their sender a bounce. */
  noticeIds(): Set<string> {
    return new Set(this.owedIds.all() as string[]);
  }

  /** The failed recipients of this message still owed a bounce. */
  notices(id: string): PendingNotice[] {
    return (this.owed.all(id) as [string, string][]).map(([to, relay]) => ({ to, relay }));
  }

  /** The bounce is queued (or not to be sent): forget what was owed. */
  noticesSent(id: string): void {
    this.dropNotices.run(id);
  }

  /** Every recipient of the envelope with its current state (rows override the envelope). */
  status(envelope: QueueEnvelope): RecipientStatus[] {
    const rows = new Map((this.select.all(envelope.id) as Row[]).map((r) => [r.rcpt, r]));
    const fromEnvelope = envelopeStatus(envelope);
    return envelope.recipients.map((r, i) => {
      const row = rows.get(r.to);
      return row ? { to: r.to, state: stateOf(row), attempts: row.attempts, nextAttempt: row.next_attempt } : fromEnvelope[i]!;
    });
  }

  /**
   * Makes deferred recipients due at `at` (queue flush, ETRN) without counting an attempt; recipients
   * without a row are due since arrival already.
   */
  reschedule(id: string, recipients: readonly string[], at: number): void {
    this.db.transaction(() => {
      for (const rcpt of recipients) this.reschedule1.run(at, id, rcpt);
    })();
  }

  /** The sender of this message was told it is delayed (delivery.delay_warning): once per message. */
  wasWarned(id: string): boolean {
    return this.db.prepare("SELECT 1 FROM warned WHERE id = ?").get(id) !== undefined;
  }

  markWarned(id: string): void {
    this.db.prepare("INSERT OR IGNORE INTO warned (id) VALUES (?)").run(id);
  }

  /** Forgets messages whose files the caller removed first, in one transaction. */
  forgetAll(ids: readonly string[]): void {
    this.db.transaction(() => {
      for (const id of ids) {
        this.remove.run(id);
        this.unwarn.run(id);
        this.dropNotices.run(id);
      }
    })();
  }
}

/** Where to read recipients' current state from: QueueState, or envelopeOnly when there is no state.db yet. */
export interface StatusSource {
  status(envelope: QueueEnvelope): RecipientStatus[];
}

/** Each recipient as the envelope says (no attempt recorded yet). */
export function envelopeStatus(envelope: QueueEnvelope): RecipientStatus[] {
  return envelope.recipients.map((r) => ({ to: r.to, state: r.state, attempts: r.attempts, nextAttempt: r.next_attempt === null ? null : Date.parse(r.next_attempt) }));
}

export const envelopeOnly: StatusSource = { status: envelopeStatus };

function stateOf(row: Row): RecipientState {
  if (row.state === "scheduled") return { kind: "scheduled" };
  const reply = row.reply === null ? { code: 0, lines: [""] } : (JSON.parse(row.reply) as Reply);
  return { kind: row.state, reply };
}

/** A recipient needs no more attempts. */
export function isFinal(s: RecipientStatus): boolean {
  return s.state.kind === "delivered" || s.state.kind === "failed";
}
