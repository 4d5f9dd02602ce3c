// The commit journal: before a message with several files (list copies, queue message + envelope)
// makes its first file visible, the list of its renames (tmp → final) is written and fsync'd to
// <data_dir>/spool/journal/<id>.json. Its durable removal, after the folder fsyncs, is the commit
// point. A journal found at start belongs to a message whose client got no 250: recovery removes
// every file it names, visible or not, so after a crash a message shows every copy or none.
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
  private constructor(
    readonly file: string,
    private readonly syncDir: (dir: string) => Promise<void>,
  ) {}

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
    await syncDir(dir);
    return new CommitJournal(file, syncDir);
  }

  /** The commit point: the journal's removal, made durable. */
  async remove(): Promise<void> {
    await fs.unlink(this.file);
    await this.syncDir(path.dirname(this.file));
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
  /** Messages a crash cut before their commit point: undone. */
  undone: number;
  /** Files (visible copies and temporaries) those messages had. */
  removed: number;
}

/** Startup: undoes every message whose commit a crash cut (its journal is still there). */
export async function replayJournals(dataDir: string): Promise<ReplayResult> {
  const result: ReplayResult = { undone: 0, removed: 0 };
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
    const renames = (await readJournal(dataDir, file)) ?? [];
    result.removed += await removeFiles(renames.flatMap((r) => [r.to, r.from]));
    result.undone++;
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

