// One `petrel serve` per data_dir: a lock held for the life of the process. Node has no flock, so
// the lock is SQLite's (better-sqlite3 is already here): <data_dir>/petrel.lock opened in exclusive
// locking mode and written once, which holds an fcntl write lock until the process ends, however it
// ends (the kernel drops it on SIGKILL: no stale lock, no pid-reuse guess). petrel.pid says who holds it.
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { MailError } from "../core/errors.js";

export class DataDirLock {
  private constructor(
    private readonly db: Database.Database,
    private readonly pidFile: string,
  ) {}

  /** Takes the lock or throws MailError("data-dir-in-use") naming the holder's pid. */
  static acquire(dataDir: string): DataDirLock {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const pidFile = path.join(dataDir, "petrel.pid");
    const db = new Database(path.join(dataDir, "petrel.lock"), { timeout: 0 });
    try {
      db.pragma("locking_mode = EXCLUSIVE");
      db.exec("CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL)");
      db.transaction(() => {
        db.exec("DELETE FROM holder");
        db.prepare("INSERT INTO holder (pid) VALUES (?)").run(process.pid);
      }).exclusive();
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code !== "SQLITE_BUSY") throw err;
      const pid = readPid(pidFile);
      throw new MailError("data-dir-in-use", `data_dir ${dataDir} is in use by another petrel serve (pid ${pid ?? "unknown"})`, { cause: err });
    }
    fs.writeFileSync(pidFile, `${process.pid}\n`, { mode: 0o600 });
    return new DataDirLock(db, pidFile);
  }

  release(): void {
    try {
      fs.unlinkSync(this.pidFile);
    } catch {
      // Already gone: the next server writes its own.
    }
    this.db.close();
  }
}

function readPid(file: string): number | null {
  try {
    const pid = Number(fs.readFileSync(file, "utf8").trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
