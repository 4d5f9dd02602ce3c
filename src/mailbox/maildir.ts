// Maildir layout and names (https://cr.yp.to/proto/maildir.html): <root>/{tmp,new,cur}, and Maildir++
// folders such as <root>/.Junk/{tmp,new,cur} with a "maildirfolder" file (spam goes there). A message is
// written under tmp/ with LF line ends and renamed into new/; its name is "<sec>.M<usec>P<pid>Q<n>.<host>",
// then ",S=" (file size) and ",W=" (CRLF size), the extensions Dovecot also writes. The part before ","
// is its stable unique id (POP3 UIDL); P<pid> and <host> let startup recovery tell Petrel's own tmp/ files.
// A single copy is committed in tmp/ under its final name plus ",C" (committedTmpName) before its rename
// into new/, so recovery after a reboot can finish it with the right ,S=/,W= name.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";

/** Folder of the mailbox for a canonical local address: <data_dir>/mailboxes/<domain>/<local>. */
export function mailboxPath(dataDir: string, address: string): string {
  const at = address.lastIndexOf("@");
  return path.join(dataDir, "mailboxes", address.slice(at + 1), address.slice(0, at));
}

const created = new Set<string>();

/** Drops a Maildir (and its folders) from the made-by-us set after it was found removed, so ensureMaildir makes it again. */
export function forgetMaildir(root: string): void {
  created.delete(root);
  for (const dir of created) if (dir.startsWith(root + path.sep)) created.delete(dir);
}

/** The Maildir++ folder spam is delivered to (what Dovecot, mutt and most IMAP clients call "Junk"). */
export const JUNK_FOLDER = ".Junk";

/**
 * Creates the Maildir++ folder <root>/<folder>/{tmp,new,cur} with its "maildirfolder" marker file, once
 * per process (again after forgetMaildir), after the Maildir itself. New entries are fsync'd up to the
 * Maildir (the Maildir's own entries up to data_dir by ensureMaildir), so a message committed into the
 * folder cannot vanish with it.
 */
export async function ensureMaildirFolder(root: string, folder: string): Promise<void> {
  if (!/^\.[^/]+$/.test(folder)) throw new RangeError(`Cannot use ${folder} as a Maildir++ folder name`);
  const dir = path.join(root, folder);
  if (created.has(dir)) return;
  await ensureMaildir(root);
  const fresh = await fs.stat(path.join(dir, "maildirfolder")).then(() => false, () => true);
  await Promise.all(["tmp", "new", "cur"].map((d) => fs.mkdir(path.join(dir, d), { recursive: true, mode: 0o700 })));
  if (fresh) {
    await fs.writeFile(path.join(dir, "maildirfolder"), "", { mode: 0o600 });
    await fsyncDir(dir);
    await fsyncDir(root);
  }
  created.add(dir);
}

/**
 * Creates <root>/{tmp,new,cur} once per process (again after forgetMaildir). A Maildir made here has its folder entries
 * fsync'd up to <data_dir>, so a message committed into it cannot vanish with its folder.
 */
export async function ensureMaildir(root: string): Promise<void> {
  if (created.has(root)) return;
  const fresh = await fs.stat(path.join(root, "new")).then(() => false, () => true);
  await Promise.all(["tmp", "new", "cur"].map((d) => fs.mkdir(path.join(root, d), { recursive: true, mode: 0o700 })));
  if (fresh) {
    // root, <domain>, mailboxes, data_dir: each holds the entry of the one below.
    let dir = root;
    for (let i = 0; i < 4; i++, dir = path.dirname(dir)) await fsyncDir(dir);
  }
  created.add(root);
}

/**
 * Writes a small file (0600) and fdatasyncs it before closing: the spool's queue envelope, the commit
 * journal, the recorded boot id. flag "wx" (the default) refuses an existing file; a file created
 * here that could not be written whole is removed. The caller makes its folder entry durable.
 */
export async function writeFileSynced(file: string, content: string, flag: "wx" | "w" = "wx"): Promise<void> {
  const fh = await fs.open(file, flag, 0o600);
  try {
    await fh.writeFile(content);
    await fh.datasync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fs.unlink(file).catch(() => undefined);
    throw err;
  }
  await fh.close();
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

let seq = 0;
const COMMITTED_MARK = ",C";
const host = os.hostname().replace(/\//g, "\\057").replace(/:/g, "\\072").replace(/,/g, "\\054");

/** A name unique across processes and time for a new message. */
export function uniqueName(now = Date.now()): string {
  const sec = Math.floor(now / 1000);
  const usec = (now % 1000) * 1000 + Number(process.hrtime.bigint() % 1000n);
  return `${sec}.M${usec}P${process.pid}Q${++seq}.${host}`;
}

const OWN_NAME = new RegExp(`^(\\d+\\.M\\d+P(\\d+)Q\\d+\\.${host.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")})(?:(,S=\\d+,W=\\d+)${COMMITTED_MARK})?$`);

/** A Petrel tmp/ file name: who wrote it and, for a committed copy, the name it gets in new/. */
export interface OwnTmpName {
  readonly pid: number;
  /** The final name (new/) of a committed copy; null for a copy still being written. */
  readonly committed: string | null;
}

/** Parses a name this program made on this host (uniqueName or committedTmpName); null for another writer's file. */
export function ownTmpName(fileName: string): OwnTmpName | null {
  const m = OWN_NAME.exec(fileName);
  return m ? { pid: Number(m[2]), committed: m[3] ? m[1]! + m[3] : null } : null;
}

/**
 * The tmp/ name of a committed single copy: its final name (with ,S= and ,W=) plus ",C". Once tmp/ is
 * fsync'd the copy survives a reboot and recovery renames it to finalName in new/.
 */
export function committedTmpName(finalName: string): string {
  return finalName + COMMITTED_MARK;
}

/** The unique id of a message file name: everything before the first "," or ":". */
export function uniqueIdOf(fileName: string): string {
  const m = /^[^,:]+/.exec(fileName);
  return m ? m[0] : fileName;
}

/** The ",S=<size>" (file size) or ",W=<size>" (size with CRLF line ends) value of a name, if present. */
export function sizeOf(fileName: string, which: "S" | "W" = "S"): number | null {
  const m = new RegExp(`,${which}=(\\d+)`).exec(fileName);
  return m ? Number(m[1]) : null;
}
