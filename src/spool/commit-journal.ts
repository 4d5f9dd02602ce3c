// The commit journal: before a message with several files (list copies, queue message + envelope)
// makes its first file visible, the list of its renames (tmp → final) is written and fsync'd to
// <data_dir>/spool/journal/<id>.json. Recovery at start replays what a crash left: when any rename
// had happened (the message was committed) it finishes the rest; when none had, it removes the
// temporaries, so after a crash a message shows every copy or none. Removed after the folder fsyncs.
import fs from "node:fs/promises";
import path from "node:path";
import { fsyncDir } from "../mailbox/maildir.js";

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

  /** Writes and fsyncs the journal (file and folder entry): after this a crash is recoverable. */
  static async write(dataDir: string, id: string, renames: readonly Rename[]): Promise<CommitJournal> {
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
    const fh = await fs.open(file, "wx", 0o600);
    try {
      await fh.writeFile(JSON.stringify(record) + "\n");
      await fh.datasync();
    } catch (err) {
      await fs.unlink(file).catch(() => undefined);
      throw err;
    } finally {
      await fh.close().catch(() => undefined);
    }
    await fsyncDir(dir);
    return new CommitJournal(file);
  }

  async remove(): Promise<void> {
    await fs.unlink(this.file);
  }
}

/**
 * Renames whatever is still at its temporary name; a rename whose source is gone was done before.
 * Returns the folders that received files, for the caller to fsync.
 */
export async function finishRenames(renames: readonly Rename[]): Promise<{ dirs: Set<string>; missing: number; renamed: number }> {
  const dirs = new Set<string>();
  let missing = 0, renamed = 0;
  for (const r of renames) {
    try {
      await fs.rename(r.from, r.to);
      renamed++;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      if (!(await exists(r.to))) missing++;
    }
    dirs.add(path.dirname(r.to));
  }
  return { dirs, missing, renamed };
}

export interface ReplayResult {
  /** Journals whose message was committed: the remaining renames were done. */
  completed: number;
  /** Journals whose message never became visible: the temporaries were removed. */
  rolledBack: number;
  /** Files renamed into place by recovery. */
  renamed: number;
  /** Files a journal named that were at neither name (removed by someone else). */
  missing: number;
}

/** Startup: replays every journal left by a process that died mid-commit. */
export async function replayJournals(dataDir: string): Promise<ReplayResult> {
  const result: ReplayResult = { completed: 0, rolledBack: 0, renamed: 0, missing: 0 };
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
    const renames = await readJournal(dataDir, file);
    // A journal that does not parse was cut short by the crash: no rename had started.
    if (renames && (await anyExists(renames.map((r) => r.to)))) {
      const done = await finishRenames(renames);
      for (const d of done.dirs) await fsyncDir(d);
      result.completed++;
      result.renamed += done.renamed;
      result.missing += done.missing;
    } else {
      for (const r of renames ?? []) await fs.unlink(r.from).catch(() => undefined);
      result.rolledBack++;
    }
    await fs.unlink(file);
  }
  if (names.length) await fsyncDir(dir);
  return result;
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

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(() => true, () => false);
}

async function anyExists(files: readonly string[]): Promise<boolean> {
  for (const f of files) if (await exists(f)) return true;
  return false;
}
