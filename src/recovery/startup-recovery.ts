// Startup recovery, run once the data_dir lock is held (so no other Petrel writes here): undoes the
// commits a crash cut before their commit point (a spool journal left: its client got no 250), then
// sweeps what no one will finish: Petrel's own files in Maildir tmp/ folders and queue temporaries at
// once, other writers' tmp/ files after 36 hours (the Maildir spec's rule), queue messages without an
// envelope.
import fs from "node:fs/promises";
import path from "node:path";
import { fsyncDir, ownNamePid } from "../mailbox/maildir.js";
import { queuePaths } from "../queue/queue-entry.js";
import { replayJournals, type ReplayResult } from "../spool/commit-journal.js";

/** Files of other programs in tmp/ older than this are abandoned (https://cr.yp.to/proto/maildir.html). */
export const FOREIGN_TMP_AGE_MS = 36 * 3600 * 1000;

export interface SweepCount {
  files: number;
  bytes: number;
}

export interface RecoveryReport {
  readonly journals: ReplayResult;
  /** Petrel's own unfinished copies in Maildir tmp/ folders. */
  readonly maildirTmp: SweepCount;
  /** Other writers' tmp/ files older than 36 h. */
  readonly foreignTmp: SweepCount;
  /** Queue temporaries and messages without an envelope. */
  readonly queue: SweepCount;
}

export async function recoverDataDir(dataDir: string, now = Date.now()): Promise<RecoveryReport> {
  const journals = await replayJournals(dataDir);
  const maildirTmp = { files: 0, bytes: 0 };
  const foreignTmp = { files: 0, bytes: 0 };
  const mailboxes = path.join(dataDir, "mailboxes");
  for (const domain of await subfolders(mailboxes)) {
    for (const user of await subfolders(path.join(mailboxes, domain))) {
      const tmp = path.join(mailboxes, domain, user, "tmp");
      let touched = false;
      for (const name of await names(tmp)) {
        const file = path.join(tmp, name);
        const st = await fs.lstat(file).catch(() => null);
        if (!st || !st.isFile()) continue;
        const own = ownNamePid(name);
        const count = own !== null && own !== process.pid ? maildirTmp : own === null && now - st.mtimeMs > FOREIGN_TMP_AGE_MS ? foreignTmp : null;
        if (!count) continue;
        await fs.unlink(file);
        count.files++;
        count.bytes += st.size;
        touched = true;
      }
      if (touched) await fsyncDir(tmp);
    }
  }
  const queue = await sweepQueue(path.join(dataDir, "queue"));
  return { journals, maildirTmp, foreignTmp, queue };
}

async function sweepQueue(queueDir: string): Promise<SweepCount> {
  const count = { files: 0, bytes: 0 };
  const remove = async (file: string) => {
    const st = await fs.lstat(file).catch(() => null);
    if (!st?.isFile()) return false;
    await fs.unlink(file);
    count.files++;
    count.bytes += st.size;
    return true;
  };
  const tmpDir = path.join(queueDir, "tmp");
  let touched = false;
  for (const name of await names(tmpDir)) touched = (await remove(path.join(tmpDir, name))) || touched;
  if (touched) await fsyncDir(tmpDir);
  const envelopes = new Set(await names(path.join(queueDir, "envelopes")));
  // Leftovers of earlier versions: "<id>.json.tmp<pid>" envelopes and "<id>.tmp" messages.
  touched = false;
  for (const name of envelopes) if (!name.endsWith(".json")) touched = (await remove(path.join(queueDir, "envelopes", name))) || touched;
  if (touched) await fsyncDir(path.join(queueDir, "envelopes"));
  touched = false;
  for (const name of await names(path.join(queueDir, "messages"))) {
    const id = name.endsWith(".eml") ? name.slice(0, -4) : null;
    if (id !== null && envelopes.has(path.basename(queuePaths(queueDir, id).envelope))) continue;
    touched = (await remove(path.join(queueDir, "messages", name))) || touched;
  }
  if (touched) await fsyncDir(path.join(queueDir, "messages"));
  return count;
}

async function names(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return [];
    throw err;
  }
}

async function subfolders(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}
