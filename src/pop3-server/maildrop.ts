// A POP3 maildrop (RFC 1939 §5, §6): the snapshot of a Maildir's new/ and cur/ taken at login,
// numbered in delivery order, with deletion marks that touch the disk only in update() (QUIT).
// Trusts the Maildir names delivery writes (",W=" sizes) but checks every UIDL fits RFC 1939 §7.
import crypto from "node:crypto";
import fs from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import { fsyncDir, sizeOf, uniqueIdOf } from "../mailbox/maildir.js";
import { CrlfSizeCounter } from "../mailbox/crlf-size.js";

export interface MaildropMessage {
  /** 1-based number for this session. */
  readonly number: number;
  /** The UIDL id: 1-70 characters 0x21-0x7E, stable across sessions (RFC 1939 §7). */
  readonly uid: string;
  /** Octets RETR sends: CRLF line ends, before byte-stuffing, without the final ".CRLF". */
  readonly size: number;
  /** The Maildir unique id (name before "," or ":"), used to find the file if another tool moved it. */
  readonly key: string;
  /** Where the file was last seen. */
  path: string;
  deleted: boolean;
}

export type MessageLookup =
  | { readonly kind: "ok"; readonly message: MaildropMessage }
  | { readonly kind: "no-such"; readonly text: string }
  | { readonly kind: "deleted"; readonly text: string };

export interface UpdateResult {
  /** Files removed (or found already gone). */
  readonly deleted: number;
  /** Files that could not be removed; they stay in the mailbox. */
  readonly failed: number;
  /** Messages left in the maildrop. */
  readonly left: number;
}

const FOLDERS = ["new", "cur"] as const;
const VALID_UID = /^[\x21-\x7e]{1,70}$/;

export class Maildrop {
  private constructor(
    readonly root: string,
    private readonly list: readonly MaildropMessage[],
  ) {}

  /** Takes the snapshot: every regular file in new/ and cur/, ordered by delivery. */
  static async open(root: string): Promise<Maildrop> {
    const found: { name: string; file: string }[] = [];
    for (const folder of FOLDERS) {
      for (const name of await listFolder(path.join(root, folder))) found.push({ name, file: path.join(root, folder, name) });
    }
    found.sort((a, b) => compareNames(a.name, b.name));
    const list: MaildropMessage[] = [];
    const uids = new Set<string>();
    for (const { name, file } of found) {
      let size = sizeOf(name, "W");
      if (size === null) {
        const scanned = await scanSize(file);
        if (scanned === null) continue; // vanished since readdir: not part of the snapshot
        size = scanned;
      }
      const key = uniqueIdOf(name);
      let uid = VALID_UID.test(key) ? key : hashId(key);
      // Two files with one unique id break Maildir's promise; still give each message its own UIDL.
      if (uids.has(uid)) uid = hashId(`${path.basename(path.dirname(file))}/${name}`);
      uids.add(uid);
      list.push({ number: list.length + 1, uid, size, key, path: file, deleted: false });
    }
    return new Maildrop(root, list);
  }

  /** Messages in the snapshot, deleted ones included. */
  get count(): number {
    return this.list.length;
  }

  /** Messages not marked deleted, in order. */
  get messages(): MaildropMessage[] {
    return this.list.filter((m) => !m.deleted);
  }

  /** STAT: count and total size of the messages not marked deleted. */
  stat(): { count: number; size: number } {
    let size = 0;
    const live = this.messages;
    for (const m of live) size += m.size;
    return { count: live.length, size };
  }

  /** Finds message `n` (a number already parsed from the command line). */
  get(n: number): MessageLookup {
    const m = this.list[n - 1];
    if (n < 1 || !m) {
      const total = this.list.length;
      const text = total === 0 ? "no such message, maildrop is empty" : `no such message, only ${total} message${total === 1 ? "" : "s"} in maildrop`;
      return { kind: "no-such", text };
    }
    if (m.deleted) return { kind: "deleted", text: `message ${n} already deleted` };
    return { kind: "ok", message: m };
  }

  markDeleted(m: MaildropMessage): void {
    m.deleted = true;
  }

  /** RSET: unmarks every message. */
  reset(): void {
    for (const m of this.list) m.deleted = false;
  }

  /** Opens a message for reading; follows it to new/ or cur/ if another tool renamed it. Null if gone. */
  async openMessage(m: MaildropMessage): Promise<FileHandle | null> {
    try {
      return await fs.open(m.path, "r");
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (!(await this.relocate(m))) return null;
    try {
      return await fs.open(m.path, "r");
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** UPDATE (RFC 1939 §6): removes the marked messages, then fsyncs the folders. */
  async update(): Promise<UpdateResult> {
    let deleted = 0;
    let failed = 0;
    const touched = new Set<string>();
    for (const m of this.list) {
      if (!m.deleted) continue;
      try {
        let removed = await unlinkIfThere(m.path);
        if (!removed && (await this.relocate(m))) removed = await unlinkIfThere(m.path);
        if (removed) touched.add(path.dirname(m.path));
        deleted++; // a file someone else removed already counts as deleted
      } catch {
        failed++;
      }
    }
    for (const dir of touched) {
      try {
        await fsyncDir(dir);
      } catch {
        // The unlinks happened; a failed directory sync only weakens durability, as with any crash.
      }
    }
    return { deleted, failed, left: this.list.length - deleted };
  }

  private async relocate(m: MaildropMessage): Promise<boolean> {
    for (const folder of FOLDERS) {
      const dir = path.join(this.root, folder);
      const name = (await listFolder(dir)).find((n) => uniqueIdOf(n) === m.key);
      if (name !== undefined) {
        m.path = path.join(dir, name);
        return true;
      }
    }
    return false;
  }
}

/**
 * Delivery order: the leading seconds of the name, then the rest compared with digit runs as numbers
 * (so "M5000" comes before "M12000"), then the name itself.
 */
export function compareNames(a: string, b: string): number {
  const ka = uniqueIdOf(a), kb = uniqueIdOf(b);
  const sa = leadingSeconds(ka), sb = leadingSeconds(kb);
  if (sa !== sb) return sa < sb ? -1 : 1;
  const tokensA = ka.split(/(\d+)/), tokensB = kb.split(/(\d+)/);
  for (let i = 0; i < Math.min(tokensA.length, tokensB.length); i++) {
    const x = tokensA[i]!, y = tokensB[i]!;
    if (x === y) continue;
    // split() puts digit runs at odd positions.
    if (i % 2 === 1) return compareDigits(x, y);
    return x < y ? -1 : 1;
  }
  if (tokensA.length !== tokensB.length) return tokensA.length - tokensB.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

function leadingSeconds(name: string): number {
  const m = /^\d{1,15}/.exec(name);
  return m ? Number(m[0]) : Number.POSITIVE_INFINITY;
}

function compareDigits(x: string, y: string): number {
  const a = x.replace(/^0+(?=\d)/, ""), b = y.replace(/^0+(?=\d)/, "");
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

function hashId(text: string): string {
  return crypto.createHash("sha256").update(text).digest("hex").slice(0, 40);
}

/** Names of the regular files in a Maildir folder, skipping dot files; none if it does not exist. */
async function listFolder(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
  const names: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    if (e.isFile()) names.push(e.name);
    else if (!e.isDirectory() && (await fs.stat(path.join(dir, e.name)).catch(() => null))?.isFile()) names.push(e.name);
  }
  return names;
}

/**
 * CRLF sizes of files without ",W=" (written by other programs), by device, inode, size and mtime:
 * such a file is read once per process, not at every login. Bounded; the oldest entries go first.
 */
const scannedSizes = new Map<string, number>();
const MAX_SCANNED = 50_000;

/** The octets a file has with CRLF line ends, read once and then cached; null if it vanished. */
async function scanSize(file: string): Promise<number | null> {
  let fh: FileHandle;
  try {
    fh = await fs.open(file, "r");
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
  try {
    const st = await fh.stat();
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    const known = scannedSizes.get(key);
    if (known !== undefined) return known;
    const counter = new CrlfSizeCounter();
    for await (const chunk of fh.createReadStream({ highWaterMark: 64 * 1024, autoClose: false })) counter.feed(chunk as Buffer);
    if (scannedSizes.size >= MAX_SCANNED) scannedSizes.delete(scannedSizes.keys().next().value!);
    scannedSizes.set(key, counter.size);
    return counter.size;
  } finally {
    await fh.close();
  }
}

async function unlinkIfThere(file: string): Promise<boolean> {
  try {
    await fs.unlink(file);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === "ENOENT";
}
