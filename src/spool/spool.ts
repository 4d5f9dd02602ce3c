// The one way in for a message: SMTP (and later sendmail and bounces) open an IncomingMessage,
// stream the content into it, and commit. Local recipients get a Maildir copy each (mailbox/),
// off-site recipients one queue entry (queue/). Files are stored with LF line ends (RFC 5322 text,
// CRLF → LF; POP3 adds the CRs back). commit() resolves only when 250 may be sent; abort() leaves
// nothing behind. Trusts the envelope the session built; failures are MailErrors carrying the reply.
//
// Commit order (exactly once). The ack (what makes the message visible or final) is a rename or
// unlink WITHOUT fsync, and the 250 follows it at once: a kill (SIGKILL, OOM, crash) keeps the page
// cache, so recovery in the same boot sees exactly whether the ack happened; after a reboot recovery
// completes every message that was durably committed (startup-recovery.ts, boot-id.ts).
// Every file is first written and fdatasync'd under tmp/ names. One copy (the hot path, two fsyncs):
// rename to its final name + ",C" in tmp/, fsync tmp/ (the durable commit, group-committed), rename
// into new/ (the ack), 250. Several files (list copies, queue message and envelope): tmp/ folders
// fsync'd, a journal of the renames written and fsync'd, the renames, the folder fsyncs, the journal's
// unlink (the ack), 250. A failure before the ack is undone at once (451/452): every copy or none.
// The ack is a synchronous syscall on the event loop, so the 250 is written in the same turn (an
// async one's completion waits behind other connections' events: the soak saw 9 duplicates in 46
// kills). A retry after no reply duplicates only after a power loss before the 250 (RFC 1047), or
// if a kill falls in the microseconds between the ack and the 250's write.
//
// Inbound checks (trust/message-check.ts: SPF/DKIM/DMARC, rspamd, Bayes) run on mail a server relays to
// us: the smtp listener, no AUTH, a peer outside [auth] trusted_networks. Its incoming Authentication-
// Results fields naming our host are removed as the header streams (auth-results-filter.ts). When a
// check runs, the content (CRLF, as received) streams into every run while it is staged once: in
// memory while it fits one 64 KB batch (the batch the spool holds anyway), else written to a staging
// file (spool/staging/, LF) batch by batch; at commit the runs finish in parallel and their verdicts combine:
// reject → nothing is committed and the MailError carries the reply for the end of DATA; accept or
// junk → every copy is made from the staged content (as copies past the 16th always are) with the
// checks' header fields between Return-Path and Received (RFC 7208 §9.1 puts Received-SPF above the
// receiving hop's Received; Authentication-Results is a trace field too, RFC 8601, prepended the same
// way; Return-Path is first, added at final delivery, RFC 5321 §4.4),
// and junk puts each Maildir copy into the recipient's Maildir++ .Junk folder. Other mail (submission,
// sendmail, bounces, trusted peers, or no check that applies) keeps the single write of the fast path.
import { renameSync } from "node:fs";
import crypto from "node:crypto";
import fs from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import type net from "node:net";
import path from "node:path";
import { Readable } from "node:stream";
import { MailError } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import { reply } from "../core/reply.js";
import { CrlfSizeCounter } from "../mailbox/crlf-size.js";
import { LfLineEnds, toLf } from "../mailbox/lf-line-ends.js";
import { committedTmpName, ensureMaildir, ensureMaildirFolder, forgetMaildir, fsyncDir, JUNK_FOLDER, mailboxPath, uniqueName, writeFileSynced } from "../mailbox/maildir.js";
import type { Route } from "../delivery/recipient-resolver.js";
import { QUEUE_FOLDERS, queueEnvelope, queuePaths, type QueueDsn } from "../queue/queue-entry.js";
import { crlfChunks, crlfContent } from "../queue/queued-content.js";
import type { CheckContext, MessageCheck, StagedMessage } from "../trust/message-check.js";
import { CheckStage } from "./check-stage.js";
import { AuthResultsFilter } from "./auth-results-filter.js";
import type { MailDsnParams, RcptDsnParams } from "../smtp-server/dsn-params.js";
import { CommitJournal, removeFiles, type Rename } from "./commit-journal.js";
import { DirSyncer } from "./dir-sync.js";
import { fault } from "./fault-injection.js";
import { SubmissionHeaders } from "./submission-headers.js";
import { checkContentStart, receivedFrom, receivedHeader, returnPathHeader, type TraceInfo } from "./trace-headers.js";

export interface AcceptedRecipient {
  /** The address as the client gave it in RCPT TO. */
  readonly address: string;
  readonly route: Route;
  /** RFC 3461 NOTIFY and ORCPT from RCPT, when given. */
  readonly dsn?: RcptDsnParams;
}

export interface Envelope extends TraceInfo {
  /**
   * Where the message comes from: "submission" (an authenticated user, RFC 6409) gets a Date and a
   * Message-ID when it lacks them; "smtp" (another server relaying) is stored as it came.
   */
  readonly source?: "smtp" | "submission" | "local" | "bounce";
  /** The listener it came in on ("smtp", "submission", "submissions"); absent for local mail and bounces. */
  readonly listener?: string;
  /** The client authenticated with SMTP AUTH. */
  readonly authenticated?: boolean;
  /** RFC 3461 RET and ENVID from MAIL, when given: kept in the queue entry for bounces. */
  readonly dsn?: MailDsnParams;
  /** Reverse-path; "" for the null sender <>. */
  readonly sender: string;
  readonly recipients: readonly AcceptedRecipient[];
}

/** One file of the message: a Maildir copy, the queued copy for off-site recipients, or the staging file of checked content. */
interface Copy {
  readonly kind: "maildir" | "queue" | "staging";
  /** The Maildir root (to recreate it if removed); "" for the queue copy. */
  readonly root: string;
  /** The Maildir++ folder ("" the inbox, ".Junk"). */
  folder: string;
  tmpPath: string;
  finalDir: string;
  readonly name: string;
  /** Return-Path (Maildir copies) and Received, as text with CRLF. */
  readonly trace: { readonly returnPath: string; readonly received: string };
  /** Return-Path, the checks' header fields and Received, LF line ends. */
  prefix: Buffer;
  /** LFs in the prefix: each is one more octet with CRLF line ends. */
  prefixLf: number;
  fh: FileHandle | null;
  /** The file exists under tmpPath (abort must remove it). */
  created: boolean;
}

const FLUSH_BYTES = 64 * 1024;
/** Verdict fields only Petrel's own checks write on checked mail: a forged "X-Spam-Status: No" is removed. */
const SPAM_VERDICT_FIELDS = ["x-spam-status", "x-spam-score", "x-spam-flag", "x-spam-level"];
/** Copies written while the content streams in; the others are made at commit from the first. */
const DIRECT_COPIES = 16;
/** Copies open at once while the others are made: with the direct ones, bounds open files. */
const FANOUT_BATCH = 16;
/** Folder fsyncs in flight at once for one message (each holds a file descriptor). */
const SYNC_CONCURRENCY = 16;

/** Which checks run on received mail, and which peers are exempt. */
export interface InboundChecks {
  readonly checks: readonly MessageCheck[];
  /** [auth] trusted_networks: their mail is neither checked nor filtered. */
  readonly trustedNetworks?: net.BlockList;
}

export class Spool {
  /** Called after the commit of a message with off-site recipients (the relay sends it at once). */
  onQueued: ((id: string) => void) | undefined;

  constructor(
    private readonly dataDir: string,
    private readonly log: Logger,
    private readonly dirSync = new DirSyncer(),
    private readonly inbound: InboundChecks = { checks: [] },
  ) {}

  /**
   * Mail another server hands us: the smtp listener, no AUTH, a peer outside trusted_networks. Loopback
   * is included (local relays and tests connect there); trusted_networks exempts it where wanted.
   */
  checkable(env: Envelope): boolean {
    if (env.source !== "smtp" || env.listener !== "smtp" || env.authenticated) return false;
    const trusted = this.inbound.trustedNetworks;
    return !trusted?.check(env.peerAddress, env.peerAddress.includes(":") ? "ipv6" : "ipv4");
  }

  get queueDir(): string {
    return path.join(this.dataDir, "queue");
  }

  /** Starts every check that applies to this message; null when none does. */
  private startChecks(env: Envelope): CheckStage | null {
    if (this.inbound.checks.length === 0) return null;
    const ctx: CheckContext = {
      id: env.id,
      peerAddress: env.peerAddress,
      helo: env.helo,
      ptrName: env.client?.kind === "confirmed" ? env.client.name : null,
      receivedFrom: receivedFrom(env),
      sender: env.sender,
      recipients: env.recipients.map((r) => r.address),
      authenticated: env.authenticated ?? false,
      tls: !!env.tls,
    };
    return CheckStage.start(this.inbound.checks, ctx, this.log);
  }

  async open(env: Envelope): Promise<IncomingMessage> {
    const copies: Copy[] = [];
    const seen = new Set<string>();
    const remote: string[] = [];
    for (const r of env.recipients) {
      for (const user of r.route.local) {
        if (seen.has(user)) continue;
        seen.add(user);
        const root = mailboxPath(this.dataDir, user);
        const name = uniqueName();
        copies.push(newCopy("maildir", root, path.join(root, "tmp", name), path.join(root, "new"), name, { returnPath: returnPathHeader(env.sender), received: receivedHeader(env, r.address) }));
      }
      for (const t of r.route.remote) if (!remote.includes(t)) remote.push(t);
    }
    const q = queuePaths(this.queueDir, env.id);
    if (remote.length) {
      copies.push(newCopy("queue", "", q.messageTmp, path.dirname(q.message), path.basename(q.message), { returnPath: "", received: receivedHeader(env, remote.length === 1 ? remote[0]! : null) }));
    }
    const msg = new IncomingMessage({ dataDir: this.dataDir, dirSync: this.dirSync, log: this.log, ...(this.onQueued ? { onQueued: this.onQueued } : {}) }, env, copies, remote);
    if (env.source === "submission")
      msg.submission = new SubmissionHeaders({ hostname: env.hostname, now: () => new Date(), messageId: () => `${env.id}.${crypto.randomBytes(6).toString("hex")}` });
    const checked = this.checkable(env);
    if (checked) {
      msg.authResults = new AuthResultsFilter(env.hostname, SPAM_VERDICT_FIELDS);
      msg.checks = this.startChecks(env);
    }
    try {
      if (remote.length) for (const f of QUEUE_FOLDERS) await ensureQueueDir(path.join(this.queueDir, f));
      if (msg.checks) {
        // Checked: the copies are made at commit, with the checks' headers, from the content staged
        // in memory (up to one 64 KB batch) or, once it is larger, in a staging file made at its first flush.
        const dir = path.join(this.dataDir, "spool", "staging");
        const name = uniqueName();
        msg.staging = newCopy("staging", "", path.join(dir, name), dir, name, { returnPath: "", received: "" });
      } else {
        // Direct copies first, the queue copy among them when there is one (it is written as content streams).
        const direct = copies.length <= DIRECT_COPIES ? copies : [...copies.slice(0, DIRECT_COPIES - 1), copies[copies.length - 1]!];
        for (const c of direct) await openCopy(c);
        msg.direct = direct;
      }
      fault("after-open");
    } catch (err) {
      await msg.abort();
      throw storageError(err);
    }
    return msg;
  }
}

function newCopy(kind: Copy["kind"], root: string, tmpPath: string, finalDir: string, name: string, trace: Copy["trace"]): Copy {
  const c: Copy = { kind, root, folder: "", tmpPath, finalDir, name, trace, prefix: Buffer.alloc(0), prefixLf: 0, fh: null, created: false };
  setPrefix(c, "");
  return c;
}

/** The copy's trace headers with the checks' fields (CRLF text) between Return-Path and Received. */
function setPrefix(c: Copy, checkFields: string): void {
  c.prefix = toLf(c.trace.returnPath + checkFields + c.trace.received);
  c.prefixLf = 0;
  for (const b of c.prefix) if (b === 10) c.prefixLf++;
}

/** Moves a Maildir copy not yet created into the Maildir++ folder `folder` of the same Maildir. */
function intoFolder(c: Copy, folder: string): void {
  c.folder = folder;
  c.tmpPath = path.join(c.root, folder, "tmp", c.name);
  c.finalDir = path.join(c.root, folder, "new");
}

async function ensureCopyDirs(c: Copy): Promise<void> {
  if (c.kind !== "maildir") return;
  if (c.folder) await ensureMaildirFolder(c.root, c.folder);
  else await ensureMaildir(c.root);
}

/** Creates the copy's tmp file; a Maildir removed since this process made it is made again. */
async function openCopy(c: Copy): Promise<void> {
  await ensureCopyDirs(c);
  try {
    c.fh = await fs.open(c.tmpPath, "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT" || c.kind === "queue") throw err;
    if (c.kind === "staging") await ensureStagingDir(path.dirname(c.tmpPath), true);
    else forgetMaildir(c.root);
    await ensureCopyDirs(c);
    c.fh = await fs.open(c.tmpPath, "wx", 0o600);
  }
  c.created = true;
}

let stagingReady = "";

/** spool/staging/ holds content being checked; nothing there needs to survive a crash (recovery empties it). */
async function ensureStagingDir(dir: string, again = false): Promise<void> {
  if (stagingReady === dir && !again) return;
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  stagingReady = dir;
}

interface SpoolContext {
  readonly dataDir: string;
  readonly dirSync: DirSyncer;
  readonly log: Logger;
  readonly onQueued?: (id: string) => void;
}

export class IncomingMessage {
  /** Copies written while the content streams; set by Spool.open. */
  direct: Copy[] = [];
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly lf = new LfLineEnds();
  /** Counts the stored (LF) content; its bare LFs are what CRLF line ends add. */
  private readonly crlf = new CrlfSizeCounter();
  private contentSize = 0;
  private started = false;
  private journal: CommitJournal | null = null;
  private envelopeTmp: string | null = null;
  /** A single copy renamed to its committed name in tmp/ (undo must remove it). */
  private committedTmp: string | null = null;
  private readonly prefixed = new Set<Copy>();
  private finished = false;

  constructor(
    private readonly ctx: SpoolContext,
    private readonly env: Envelope,
    private readonly copies: readonly Copy[],
    readonly remote: readonly string[],
  ) {}

  /** Adds Date and Message-ID to a submitted message lacking them (RFC 6409 §8), as it streams. */
  submission: SubmissionHeaders | null = null;
  /** Removes Authentication-Results fields claiming our name from checkable mail, as it streams. */
  authResults: AuthResultsFilter | null = null;
  /** The checks running on this message; null: the fast path. */
  checks: CheckStage | null = null;
  /** The file the checked content is written to (the copies are made from it at commit). */
  staging: Copy | null = null;

  /** Takes pieces of content; they must not be modified afterwards. Writes in batches. */
  async write(pieces: readonly Buffer[]): Promise<void> {
    const submitted = this.submission ? this.submission.feed(pieces) : pieces;
    return this.writeContent(this.authResults ? this.authResults.feed(submitted) : submitted);
  }

  private async writeContent(pieces: readonly Buffer[]): Promise<void> {
    for (const p of pieces) {
      if (!this.started && p.length) {
        this.started = true;
        checkContentStart(p[0]!);
      }
      this.checks?.write(p);
      this.add(this.lf.feed(p));
    }
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
  }

  private add(converted: readonly Buffer[]): void {
    for (const b of converted) {
      this.crlf.feed(b);
      this.pending.push(b);
      this.pendingBytes += b.length;
      this.contentSize += b.length;
    }
  }

  /** Writes the pending batch to the direct copies; `final` at commit, when checked content may stay in memory. */
  private async flush(final = false): Promise<void> {
    const staging = this.staging;
    if (staging && !staging.created) {
      if (final) return; // all of it is in `pending`: the copies are made from there
      try {
        await ensureStagingDir(path.dirname(staging.tmpPath));
        await openCopy(staging);
      } catch (err) {
        throw storageError(err);
      }
      this.direct = [staging];
    }
    const body = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    try {
      await Promise.all(
        this.direct.map(async (c) => writeAll(c.fh!, this.needsPrefix(c) ? [c.prefix, ...body] : body)),
      );
    } catch (err) {
      throw storageError(err);
    }
  }

  /** Each copy gets its trace headers with its first write. */
  private needsPrefix(c: Copy): boolean {
    if (this.prefixed.has(c)) return false;
    this.prefixed.add(c);
    return true;
  }

  /**
   * Makes every copy durable and visible; resolves when 250 may be sent (right after the ack). A
   * failure undoes what became visible (451/452); a crash is undone or completed by recovery at start.
   * onAck runs synchronously right after the ack: a caller that writes its 250 there leaves a kill
   * only the gap between two syscalls to fall in (instead of the promise chain back to it).
   */
  async commit(onAck: () => void = () => undefined): Promise<void> {
    if (this.finished) throw new Error("message already finished");
    let renames: Rename[] = [];
    try {
      if (this.submission) await this.writeContent(this.submission.end());
      if (this.authResults) await this.writeContent(this.authResults.end());
      this.add(this.lf.end());
      await this.flush(true);
      fault("after-write");
      if (this.staging) await this.finishChecks(this.staging);
      await Promise.all(this.direct.filter((c) => c !== this.staging).map((c) => closeDurably(c)));
      await this.makeOtherCopies();
      fault("after-tmp-fsync");
      renames = this.copies.map((c) => ({ from: c.tmpPath, to: path.join(c.finalDir, this.finalName(c)) }));
      if (this.remote.length) {
        renames.push(await this.writeEnvelope());
        fault("after-queue-write");
      }
      const ack = renames.length === 1 ? await this.commitOne(renames[0]!) : await this.commitMany(renames);
      // No await from here to onAck: the ack and the caller's 250 happen in one turn of the event loop.
      ack();
      this.finished = true;
    } catch (err) {
      await this.undo(renames);
      throw storageError(err);
    }
    try {
      onAck();
    } catch (err) {
      // The message is committed: a throwing caller must not turn that into a failure.
      this.ctx.log.error({ err, id: this.env.id }, "onAck failed after the commit");
    }
    fault("after-ack");
    if (this.remote.length) this.ctx.onQueued?.(this.env.id);
    if (this.staging?.created) await fs.unlink(this.staging.tmpPath).catch(() => undefined);
  }

  /**
   * End of DATA for a checked message: the staging file is complete; every run finishes (in parallel)
   * and the verdicts combine. Reject throws the reply; accept and junk set each copy's headers and,
   * for junk, put the Maildir copies into .Junk (they are created only after this, from the staged content).
   */
  private async finishChecks(staging: Copy): Promise<void> {
    let content: () => AsyncGenerator<Buffer>;
    if (staging.created) {
      await staging.fh!.close();
      staging.fh = null;
      content = () => crlfContent(staging.tmpPath);
    } else {
      const inMemory = this.pending;
      content = () => crlfChunks(inMemory);
    }
    const staged: StagedMessage = { size: this.contentSize + this.crlf.bareLf, open: () => Readable.from(content()) };
    const { verdict, fields } = await this.checks!.finish(staged);
    if (verdict.kind === "reject")
      throw new MailError("refused-by-check", `Refused by an inbound check: ${verdict.reason}`, { reply: verdict.reply });
    for (const c of this.copies) {
      setPrefix(c, fields);
      if (verdict.kind === "junk" && c.kind === "maildir") intoFolder(c, JUNK_FOLDER);
    }
  }

  /**
   * One copy (a Maildir one: a queue entry has two files): the committed name in tmp/, made durable
   * by one fsync of tmp/ shared with concurrent messages. Returns the ack: the rename into new/.
   */
  private async commitOne(r: Rename): Promise<() => void> {
    const tmpDir = path.dirname(r.from);
    const committed = path.join(tmpDir, committedTmpName(path.basename(r.to)));
    await fs.rename(r.from, committed);
    this.committedTmp = committed;
    fault("after-mark");
    await this.ctx.dirSync.sync(tmpDir);
    fault("after-mark-fsync");
    return () => renameSync(committed, r.to);
  }

  /**
   * Several files: a journal of the renames, made durable before them, the renames, the folder
   * fsyncs. Returns the ack: the journal's unlink.
   */
  private async commitMany(renames: readonly Rename[]): Promise<() => void> {
    // The tmp/ entries must be durable before the journal that names them.
    await this.syncDirs(new Set(renames.map((r) => path.dirname(r.from))));
    const journal = (this.journal = await CommitJournal.write(this.ctx.dataDir, this.env.id, renames, (d) => this.ctx.dirSync.sync(d)));
    fault("after-journal");
    for (const [i, r] of renames.entries()) {
      await fs.rename(r.from, r.to);
      if (i === 0) fault("after-first-rename");
    }
    fault("after-renames");
    await this.syncDirs(new Set(renames.map((r) => path.dirname(r.to))));
    fault("after-folder-fsync");
    return () => journal.ack();
  }

  /** A failed commit: removes every copy made visible and every temporary; else recovery does at start. */
  private async undo(renames: readonly Rename[]): Promise<void> {
    try {
      await removeFiles([...renames.flatMap((r) => [r.to, r.from]), ...(this.committedTmp ? [this.committedTmp] : [])]);
      await this.journal?.discard();
    } catch (err) {
      this.ctx.log.error({ err, id: this.env.id, journal: this.journal?.file }, "cannot undo a failed commit; recovery at next start removes it (completes it after a reboot)");
    }
  }

  private finalName(c: Copy): string {
    if (c.kind === "queue") return c.name;
    // ",S=" is the file size, ",W=" the size with CRLF line ends (what POP3 RETR sends).
    const size = c.prefix.length + this.contentSize;
    return `${c.name},S=${size},W=${size + c.prefixLf + this.crlf.bareLf}`;
  }

  /**
   * Copies beyond the direct ones: made from the first direct copy's content (or the checked content
   * still in memory), a batch at a time.
   */
  private async makeOtherCopies(): Promise<void> {
    const others = this.copies.filter((c) => !this.direct.includes(c));
    if (others.length === 0) return;
    if (this.direct.length === 0) return this.makeCopiesFromMemory(others);
    const source = this.direct[0]!;
    const src = await fs.open(source.tmpPath, "r");
    const buf = Buffer.allocUnsafe(FLUSH_BYTES);
    try {
      for (let i = 0; i < others.length; i += FANOUT_BATCH) {
        const batch = others.slice(i, i + FANOUT_BATCH);
        try {
          for (const c of batch) await openCopy(c);
          await Promise.all(batch.map((c) => writeAll(c.fh!, [c.prefix])));
          for (let pos = source.prefix.length, left = this.contentSize; left > 0; ) {
            const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, left), pos);
            if (bytesRead === 0) throw new Error(`${source.tmpPath} is shorter than written`);
            const chunk = buf.subarray(0, bytesRead);
            await Promise.all(batch.map((c) => writeAll(c.fh!, [chunk])));
            pos += bytesRead;
            left -= bytesRead;
          }
          await Promise.all(batch.map((c) => closeDurably(c)));
        } finally {
          for (const c of batch) if (c.fh) await c.fh.close().catch(() => undefined);
          for (const c of batch) c.fh = null;
        }
      }
    } finally {
      await src.close();
    }
  }

  /** Checked content that fitted one batch (`pending`, never written): each copy is its prefix and that. */
  private async makeCopiesFromMemory(copies: readonly Copy[]): Promise<void> {
    const content = this.pending;
    for (let i = 0; i < copies.length; i += FANOUT_BATCH) {
      const batch = copies.slice(i, i + FANOUT_BATCH);
      try {
        for (const c of batch) await openCopy(c);
        await Promise.all(batch.map((c) => writeAll(c.fh!, [c.prefix, ...content])));
        await Promise.all(batch.map((c) => closeDurably(c)));
      } finally {
        for (const c of batch) if (c.fh) await c.fh.close().catch(() => undefined);
        for (const c of batch) c.fh = null;
      }
    }
  }

  private async writeEnvelope(): Promise<Rename> {
    const q = queuePaths(path.join(this.ctx.dataDir, "queue"), this.env.id);
    const record = queueEnvelope(this.env.id, this.env.sender, this.env.receivedAt, this.remote, dsnOf(this.env), this.env.source);
    this.envelopeTmp = q.envelopeTmp;
    await writeFileSynced(q.envelopeTmp, JSON.stringify(record, null, 1) + "\n");
    return { from: q.envelopeTmp, to: q.envelope };
  }

  private async syncDirs(dirs: Set<string>): Promise<void> {
    await forEachLimited([...dirs], SYNC_CONCURRENCY, (d) => this.ctx.dirSync.sync(d));
  }

  async abort(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.checks?.abort();
    for (const c of this.staging ? [...this.copies, this.staging] : this.copies) {
      await c.fh?.close().catch(() => undefined);
      c.fh = null;
      if (c.created) await fs.unlink(c.tmpPath).catch(() => undefined);
    }
    if (this.envelopeTmp) await fs.unlink(this.envelopeTmp).catch(() => undefined);
    await this.journal?.discard().catch(() => undefined);
  }
}

async function closeDurably(c: Copy): Promise<void> {
  const fh = c.fh!;
  await fh.datasync();
  c.fh = null;
  await fh.close();
}

/** writev until everything is written (it may write less than asked). */
async function writeAll(fh: FileHandle, bufs: readonly Buffer[]): Promise<void> {
  if (bufs.length === 0) return;
  let total = 0;
  for (const b of bufs) total += b.length;
  let written = 0;
  let rest = bufs;
  for (;;) {
    const { bytesWritten } = await fh.writev(rest as Buffer[]);
    written += bytesWritten;
    if (written >= total) return;
    rest = sliceBuffers(bufs, written);
  }
}

/** Runs fn over items with at most `limit` in flight. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The reply a storage failure gives: disk full is 452 4.3.1 (RFC 3463), anything else 451 4.3.0. */
export function storageError(err: unknown): MailError {
  if (err instanceof MailError) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === "ENOSPC" || code === "EDQUOT")
    return new MailError("storage-full", `Cannot store message: ${code}`, { reply: reply(452, "4.3.1", "Insufficient system storage"), cause: err });
  return new MailError("storage", `Cannot store message: ${code ?? String(err)}`, { reply: reply(451, "4.3.0", "Error: local error in processing"), cause: err });
}

/** Creates a queue folder; when new, fsyncs queue/ and data_dir so its entry is durable. */
async function ensureQueueDir(dir: string): Promise<void> {
  if ((await fs.mkdir(dir, { recursive: true, mode: 0o700 })) === undefined) return;
  await fsyncDir(path.dirname(dir));
  await fsyncDir(path.dirname(path.dirname(dir)));
}

function sliceBuffers(bufs: readonly Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of bufs) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

/**
 * The DSN requests (RFC 3461) of the queued recipients: each off-site target inherits NOTIFY from the
 * RCPT it came from, and its ORCPT (the client's, else the RCPT address when an alias expanded it).
 */
function dsnOf(env: Envelope): QueueDsn | undefined {
  const byTarget = new Map<string, { notify?: string; orcpt?: string }>();
  for (const r of env.recipients) {
    if (!r.dsn && r.route.remote.every((t) => t === r.address)) continue;
    for (const t of r.route.remote) {
      if (byTarget.has(t)) continue;
      const notify = r.dsn?.notify ? (r.dsn.notify.kind === "never" ? "NEVER" : r.dsn.notify.events.join(",")) : undefined;
      const orcpt = r.dsn?.orcpt ? `${r.dsn.orcpt.addrType};${r.dsn.orcpt.address}` : t !== r.address ? `rfc822;${r.address}` : undefined;
      byTarget.set(t, { ...(notify ? { notify } : {}), ...(orcpt ? { orcpt } : {}) });
    }
  }
  if (!env.dsn && byTarget.size === 0) return undefined;
  return { ...(env.dsn?.ret ? { ret: env.dsn.ret } : {}), ...(env.dsn?.envid ? { envid: env.dsn.envid } : {}), recipients: Object.fromEntries(byTarget) };
}
