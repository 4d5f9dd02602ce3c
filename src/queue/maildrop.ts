// The maildrop: where `petrel sendmail` leaves a message for the server's pickup, whether or not the
// server runs (Postfix's postdrop/pickup). One file per message, data_dir/maildrop/new/<id>: a first
// line of JSON (the envelope: sender, recipients, who submitted it, when), LF, then the message bytes as
// given on stdin (CRLF or LF lines). Written under maildrop/tmp/, fdatasync'd, renamed into new/, new/
// fsync'd: only then may sendmail exit 0. The reader trusts nothing in the file: a local user wrote it.
import fs from "node:fs";
import fsp from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { fsyncDir, uniqueName } from "../mailbox/maildir.js";

export interface DroppedEnvelope {
  readonly version: 1;
  readonly id: string;
  /** Envelope sender; "" for the null sender. */
  readonly sender: string;
  readonly recipients: readonly string[];
  /** The Unix user who ran sendmail. */
  readonly uid: number;
  readonly user: string;
  /** ISO time sendmail started. */
  readonly received: string;
}

/** A dropped message waiting for pickup. */
export interface DroppedEntry {
  readonly id: string;
  readonly path: string;
  /** File size: envelope line included. */
  readonly size: number;
  readonly mtime: Date;
}

/** An open dropped message: its envelope and its content (the bytes after the envelope line). */
export interface DroppedMessage {
  readonly envelope: DroppedEnvelope;
  /** Bytes of content (file size minus the envelope line). */
  readonly size: number;
  readonly content: Readable;
  /** The content read again from its start (a bounce for refused recipients quotes it). */
  reopen(): Readable;
}

export const MAILDROP_FOLDERS = ["tmp", "new"] as const;
/** The envelope line may be long (many recipients) but not unbounded: the reader refuses more. */
export const MAX_ENVELOPE_LINE = 4 * 1024 * 1024;
const FLUSH_BYTES = 64 * 1024;

export function maildropDir(dataDir: string): string {
  return path.join(dataDir, "maildrop");
}

/** Owner to give created folders and the file when sendmail runs as root in someone else's data_dir. */
export interface FileOwner {
  readonly uid: number;
  readonly gid: number;
}

/**
 * Writes one message into the maildrop. create() makes the folders (0700) and the tmp/ file; write()
 * streams content with back-pressure (batched to 64 KB); commit() makes it durable and visible;
 * abort() removes the tmp/ file. Nothing is visible in new/ before commit() resolves.
 */
export class MaildropWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private lastByte = -1;
  private closed = false;

  private constructor(
    readonly envelope: DroppedEnvelope,
    private readonly tmpPath: string,
    private readonly finalPath: string,
    private fh: FileHandle,
  ) {}

  static async create(dataDir: string, envelope: Omit<DroppedEnvelope, "version" | "id">, owner: FileOwner | null = null): Promise<MaildropWriter> {
    const root = maildropDir(dataDir);
    for (const dir of [root, ...MAILDROP_FOLDERS.map((f) => path.join(root, f))]) await makeDir(dir, owner);
    const id = uniqueName();
    const tmpPath = path.join(root, "tmp", id);
    const fh = await fsp.open(tmpPath, "wx", 0o600);
    const full: DroppedEnvelope = { version: 1, id, ...envelope };
    const w = new MaildropWriter(full, tmpPath, path.join(root, "new", id), fh);
    try {
      if (owner) await fh.chown(owner.uid, owner.gid);
      await w.write(Buffer.from(`${JSON.stringify(full)}\n`));
    } catch (err) {
      await w.abort();
      throw err;
    }
    return w;
  }

  /** Adds content; resolves once it may be reused (written, or copied into the batch). */
  async write(piece: Buffer): Promise<void> {
    if (piece.length === 0) return;
    this.pending.push(piece);
    this.pendingBytes += piece.length;
    this.lastByte = piece[piece.length - 1]!;
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
  }

  /** The last content byte written so far (-1 before any): lets the caller end the message with a line end. */
  get lastContentByte(): number {
    return this.lastByte;
  }

  /** fdatasync, rename into new/, fsync new/. Resolves when the message is durable and visible. */
  async commit(): Promise<string> {
    try {
      await this.flush();
      await this.fh.datasync();
      this.closed = true;
      await this.fh.close();
      await fsp.rename(this.tmpPath, this.finalPath);
    } catch (err) {
      await this.abort();
      throw err;
    }
    // After the rename the message is there; an fsync failure means it may not survive a crash.
    await fsyncDir(path.dirname(this.finalPath));
    return this.finalPath;
  }

  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.fh.close().catch(() => undefined);
    }
    await fsp.unlink(this.tmpPath).catch(() => undefined);
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    await this.fh.writev(batch);
  }
}

async function makeDir(dir: string, owner: FileOwner | null): Promise<void> {
  try {
    await fsp.mkdir(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return;
    throw err;
  }
  if (owner) await fsp.chown(dir, owner.uid, owner.gid);
  await fsyncDir(path.dirname(dir));
}

/** The messages in maildrop/new/, oldest first; none when the folder does not exist yet. */
export async function listMaildrop(dataDir: string): Promise<DroppedEntry[]> {
  const dir = path.join(maildropDir(dataDir), "new");
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const entries: DroppedEntry[] = [];
  for (const id of names) {
    const p = path.join(dir, id);
    // lstat: a link planted in new/ is not a message (and openDropped refuses to follow one).
    const st = await fsp.lstat(p).catch(() => null);
    if (st?.isFile()) entries.push({ id, path: p, size: st.size, mtime: st.mtime });
  }
  return entries.sort((a, b) => a.mtime.getTime() - b.mtime.getTime() || a.id.localeCompare(b.id));
}

/**
 * Removes files left in maildrop/tmp/ by a sendmail that was killed or failed before its rename,
 * once they are older than `olderThanMs` (a running sendmail's file is younger). For the pickup's
 * start. Returns how many it removed.
 */
export async function sweepMaildropTmp(dataDir: string, olderThanMs: number, now = Date.now()): Promise<number> {
  const dir = path.join(maildropDir(dataDir), "tmp");
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw err;
  }
  let removed = 0;
  for (const name of names) {
    const p = path.join(dir, name);
    const st = await fsp.lstat(p).catch(() => null);
    if (!st || now - st.mtimeMs < olderThanMs) continue;
    if (await fsp.unlink(p).then(() => true, () => false)) removed++;
  }
  if (removed) await fsyncDir(dir);
  return removed;
}

/** Thrown for a file that is not a valid dropped message (the pickup should set it aside and log it). */
export class MaildropFormatError extends Error {
  constructor(file: string, why: string) {
    super(`Cannot read dropped message ${file}: ${why}`);
    this.name = "MaildropFormatError";
  }
}

/** Reads only the envelope line of a dropped message. */
export async function readDroppedEnvelope(file: string): Promise<{ envelope: DroppedEnvelope; contentStart: number; fileSize: number }> {
  const fh = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const fileSize = (await fh.stat()).size;
    const chunks: Buffer[] = [];
    let read = 0;
    for (;;) {
      const buf = Buffer.alloc(Math.min(FLUSH_BYTES, MAX_ENVELOPE_LINE + 1 - read));
      const { bytesRead } = await fh.read(buf, 0, buf.length, read);
      if (bytesRead === 0) throw new MaildropFormatError(file, "no end to the envelope line");
      const got = buf.subarray(0, bytesRead);
      const lf = got.indexOf(0x0a);
      if (lf >= 0) {
        chunks.push(got.subarray(0, lf));
        read += lf + 1;
        break;
      }
      chunks.push(got);
      read += bytesRead;
      if (read > MAX_ENVELOPE_LINE) throw new MaildropFormatError(file, `envelope line longer than ${MAX_ENVELOPE_LINE} bytes`);
    }
    return { envelope: parseEnvelope(file, Buffer.concat(chunks).toString("utf8")), contentStart: read, fileSize };
  } finally {
    await fh.close();
  }
}

/** Opens a dropped message for pickup: the envelope, and the content as a stream from the file. */
export async function openDropped(file: string): Promise<DroppedMessage> {
  const { envelope, contentStart, fileSize } = await readDroppedEnvelope(file);
  const open = () => fs.createReadStream(file, { start: contentStart, highWaterMark: FLUSH_BYTES });
  return { envelope, size: fileSize - contentStart, content: open(), reopen: open };
}

/** Removes a picked-up message at once, in the caller's turn (the spool's ack); syncDropFolder makes it durable. */
export function removeDroppedNow(file: string): void {
  fs.unlinkSync(file);
}

export async function syncDropFolder(file: string): Promise<void> {
  await fsyncDir(path.dirname(file));
}

/** Removes a picked-up message; durable once resolved (new/ fsync'd). */
export async function removeDropped(file: string): Promise<void> {
  await fsp.unlink(file);
  await fsyncDir(path.dirname(file));
}

function parseEnvelope(file: string, line: string): DroppedEnvelope {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new MaildropFormatError(file, "envelope is not JSON");
  }
  const o = v as Record<string, unknown> | null;
  const str = (x: unknown): x is string => typeof x === "string";
  if (typeof o !== "object" || o === null || o.version !== 1) throw new MaildropFormatError(file, "unknown envelope version");
  if (!str(o.id) || !str(o.sender) || !str(o.user) || !str(o.received) || typeof o.uid !== "number")
    throw new MaildropFormatError(file, "envelope fields missing");
  if (!Array.isArray(o.recipients) || o.recipients.length === 0 || !o.recipients.every(str))
    throw new MaildropFormatError(file, "no recipients");
  return { version: 1, id: o.id, sender: o.sender, recipients: o.recipients, uid: o.uid, user: o.user, received: o.received };
}
