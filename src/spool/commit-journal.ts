// The commit journal: before a message with several files (list copies, queue message + envelope)
// makes its first file visible, the list of its renames (tmp → final) is written and fsync'd to
// <data_dir>/spool/journal/<id>.json. After the renames and the folder fsyncs, its unlink WITHOUT
// fsync is the ack, and the 250 follows at once. A journal found at start: in the same boot (the
// server was killed, the page cache kept its unlinks) no 250 was sent, so recovery undoes every file
// it names; after a reboot the unlink may have been lost after a 250, so recovery completes it.
// Either way a message shows every copy or none; only a power loss before a 250 duplicates (RFC 1047).
import { unlinkSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { fsyncDir, writeFileSynced } from "../mailbox/maildir.js";
import type { BootKind } from "../recovery/boot-id.js";

export interface Rename {
  readonly from: string;
  readonly to: string;
}

interface JournalRecord {
  readonly version: 1;
  readonly id: string;
  /** Paths relative to data_dir. */
  readonly renames: readonly (readonly [string, string])[];
}

export function journalDir(dataDir: string): string {
  return path.join(dataDir, "spool", "journal");
}

export class CommitJournal {
  private constructor(readonly file: string) {}

  /**
   * Writes and fsyncs the journal (file and folder entry): after this a crash is recoverable.
   * syncDir fsyncs a folder (the spool's group-committing DirSyncer).
   */
  static async write(dataDir: string, id: string, renames: readonly Rename[], syncDir: (dir: string) => Promise<void> = fsyncDir): Promise<CommitJournal> {
    const dir = journalDir(dataDir);
    if ((await fs.mkdir(dir, { recursive: true, mode: 0o700 })) !== undefined) {
      await fsyncDir(path.dirname(dir));
      await fsyncDir(dataDir);
    }
    const record: JournalRecord = {
      version: 1,
      id,
      renames: renames.map((r) => [path.relative(dataDir, r.from), path.relative(dataDir, r.to)] as const),
    };
    const file = path.join(dir, `${id}.json`);
    await writeFileSynced(file, JSON.stringify(record) + "\n");
    await syncDir(dir);
    return new CommitJournal(file);
  }

  /**
   * The ack: the journal's unlink, not fsync'd (a kill keeps it; recovery after a reboot, which may
   * lose it, completes the journal instead of undoing it). Synchronous: the 250 follows in the same
   * turn of the event loop.
   */
  ack(): void {
    unlinkSync(this.file);
  }

  /** Removes the journal of a message that was undone (no fsync needed: replaying it undoes again). */
  async discard(): Promise<void> {
    await fs.unlink(this.file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
  }
}

/** Unlinks files, ignoring those already gone; fsyncs their folders. */
export async function removeFiles(files: readonly string[]): Promise<number> {
  const dirs = new Set<string>();
  let removed = 0;
  for (const f of files) {
    try {
      await fs.unlink(f);
      removed++;
      dirs.add(path.dirname(f));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  for (const d of dirs) await fsyncDir(d);
  return removed;
}

export interface ReplayResult {
  /** Same boot: messages a kill cut before their ack (no 250 was sent), undone. */
  undone: number;
  /** New boot: messages whose ack a reboot may have lost after their 250, completed. */
  completed: number;
  /** Files removed (undone) or renamed into place (completed). */
  files: number;
}

/** Startup: undoes (same boot) or completes (new boot) every message whose journal is still there. */
export async function replayJournals(dataDir: string, boot: BootKind): Promise<ReplayResult> {
  const result: ReplayResult = { undone: 0, completed: 0, files: 0 };
  const dir = journalDir(dataDir);
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return result;
    throw err;
  }
  for (const name of names) {
    const file = path.join(dir, name);
    // A journal that does not parse was cut short: no rename had started (its tmp/ files are swept).
    const renames = await readJournal(dataDir, file);
    if (renames && boot === "new") {
      result.files += await completeRenames(renames);
      result.completed++;
    } else {
      result.files += await removeFiles((renames ?? []).flatMap((r) => [r.to, r.from]));
      result.undone++;
    }
    await fs.unlink(file);
  }
  if (names.length) await fsyncDir(dir);
  return result;
}

/** Does the renames not done yet (their source still exists); fsyncs every folder involved. */
async function completeRenames(renames: readonly Rename[]): Promise<number> {
  const dirs = new Set<string>();
  let done = 0;
  for (const r of renames) {
    try {
      await fs.rename(r.from, r.to);
      done++;
      dirs.add(path.dirname(r.from)).add(path.dirname(r.to));
    } catch (err) {
      // Done before the crash (the source is gone), or its destination folder was removed since.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  for (const d of dirs) await fsyncDir(d);
  return done;
}

async function readJournal(dataDir: string, file: string): Promise<Rename[] | null> {
  try {
    const record = JSON.parse(await fs.readFile(file, "utf8")) as JournalRecord;
    if (record.version !== 1 || !Array.isArray(record.renames)) return null;
    return record.renames.map(([from, to]) => ({ from: path.join(dataDir, from), to: path.join(dataDir, to) }));
  } catch {
    return null;
  }
}

