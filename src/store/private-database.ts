// Opens a SQLite database (better-sqlite3) that only Petrel's user may read: the file made 0600 before
// SQLite opens it (its -wal and -shm take the database file's mode), a busy timeout, WAL, and the
// durability the caller asks for. Used by the queue state and greylisting; trusts data_dir's owner.
import Database from "better-sqlite3";
import { createPrivateFile, narrowPrivateFiles } from "./data-dir.js";

export interface PrivateDatabase {
  readonly db: Database.Database;
  /** Files that were readable by others and were narrowed to 0600. */
  readonly narrowed: readonly string[];
}

/** synchronous: FULL fsyncs every commit; NORMAL (with WAL) only at checkpoints, for state a crash may lose. */
export function openPrivateDatabase(file: string, synchronous: "FULL" | "NORMAL"): PrivateDatabase {
  const narrowed = narrowPrivateFiles([file, `${file}-wal`, `${file}-shm`]);
  createPrivateFile(file);
  const db = new Database(file);
  try {
    // The busy timeout first: switching a new database to WAL takes a lock another process may hold.
    db.pragma("busy_timeout = 5000");
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${synchronous}`);
  } catch (err) {
    db.close();
    throw err;
  }
  return { db, narrowed };
}

