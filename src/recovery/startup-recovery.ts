// Startup recovery, run once the data_dir lock is held and before this process writes anything (so
// every Petrel file found is a dead process's). It first tells the boot (boot-id.ts): in the same boot
// the previous server was killed and the page cache kept all it did, so a message not yet acked (spool
// journal left, or a single copy still in tmp/ under its committed ",C" name) got no 250 and is undone;
// after a reboot an ack that was not fsync'd may be lost after its 250, so such a message is completed.
// Then it sweeps what no one will finish (in each Maildir and its Maildir++ folders such as .Junk, and
// spool/staging/): Petrel's own uncommitted tmp/ files, staged content and queue temporaries at
// once, other writers' tmp/ files after 36 hours (the Maildir spec's rule), queue messages without an
// envelope. Last, it records the current boot id for the next start.
import fs from "node:fs/promises";
import path from "node:path";
import { fsyncDir, ownTmpName } from "../mailbox/maildir.js";
import { queuePaths } from "../queue/queue-entry.js";
import { replayJournals, type ReplayResult } from "../spool/commit-journal.js";
import { bootKind, currentBootId, recordBootId, type BootKind } from "./boot-id.js";

/** Files of other programs in tmp/ older than this are abandoned (https://cr.yp.to/proto/maildir.html). */
export const FOREIGN_TMP_AGE_MS = 36 * 3600 * 1000;

export interface SweepCount {
  files: number;
  bytes: number;
}

export interface RecoveryReport {
  readonly boot: BootKind;
  readonly journals: ReplayResult;
  /** Single copies committed in tmp/ (",C") whose rename into new/ (the ack) a crash cut. */
  readonly committed: { completed: number; removed: number };
  /** Petrel's own unfinished copies in Maildir tmp/ folders (Maildir++ folders too) and staged content of checked mail. */
  readonly maildirTmp: SweepCount;
  /** Other writers' tmp/ files older than 36 h. */
  readonly foreignTmp: SweepCount;
  /** Queue temporaries and messages without an envelope. */
  readonly queue: SweepCount;
}

export interface RecoveryOptions {
  readonly now?: number;
  /** The kernel's boot id (tests pass their own); by default read from /proc. */
  readonly bootId?: string | null;
}

export async function recoverDataDir(dataDir: string, opts: RecoveryOptions = {}): Promise<RecoveryReport> {
  const now = opts.now ?? Date.now();
  const current = opts.bootId !== undefined ? opts.bootId : await currentBootId();
  const boot = await bootKind(dataDir, current);
  const journals = await replayJournals(dataDir, boot);
  const committed = { completed: 0, removed: 0 };
  const maildirTmp = { files: 0, bytes: 0 };
  const foreignTmp = { files: 0, bytes: 0 };
  const mailboxes = path.join(dataDir, "mailboxes");
  for (const domain of await subfolders(mailboxes)) {
    for (const user of await subfolders(path.join(mailboxes, domain))) {
      const mailbox = path.join(mailboxes, domain, user);
      // The Maildir and its Maildir++ folders (.Junk, where the spool delivers spam).
      const folders = (await subfolders(mailbox)).filter((f) => f.startsWith("."));
      for (const root of [mailbox, ...folders.map((f) => path.join(mailbox, f))]) {
        const tmp = path.join(root, "tmp");
        let touched = false;
        let completed = false;
        for (const name of await names(tmp)) {
          const file = path.join(tmp, name);
          const st = await fs.lstat(file).catch(() => null);
          if (!st || !st.isFile()) continue;
          const own = ownTmpName(name);
          if (own?.committed && boot === "new") {
            await fs.mkdir(path.join(root, "new"), { recursive: true, mode: 0o700 });
            await fs.rename(file, path.join(root, "new", own.committed));
            committed.completed++;
            touched = completed = true;
            continue;
          }
          if (own?.committed) {
            await fs.unlink(file); // same boot: the ack rename never happened, so no 250 was sent
            committed.removed++;
            touched = true;
            continue;
          }
          const count = own ? maildirTmp : now - st.mtimeMs > FOREIGN_TMP_AGE_MS ? foreignTmp : null;
          if (!count) continue;
          await fs.unlink(file);
          count.files++;
          count.bytes += st.size;
          touched = true;
        }
        if (completed) await fsyncDir(path.join(root, "new"));
        if (touched) await fsyncDir(tmp);
      }
    }
  }
  // Content staged for inbound checks belongs to messages that got no reply: nothing to keep.
  const staging = path.join(dataDir, "spool", "staging");
  for (const name of await names(staging)) {
    const file = path.join(staging, name);
    const st = await fs.lstat(file).catch(() => null);
    if (!st?.isFile()) continue;
    await fs.unlink(file);
    maildirTmp.files++;
    maildirTmp.bytes += st.size;
  }
  const queue = await sweepQueue(path.join(dataDir, "queue"));
  await recordBootId(dataDir, current);
  return { boot, journals, committed, maildirTmp, foreignTmp, queue };
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
