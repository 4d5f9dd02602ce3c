// Keeps data_dir private (issue 7, item 4): the folder 0700 and the SQLite files 0600, since the
// database holds scrypt hashes and APOP secrets in clear. A folder or file found wider is narrowed and
// the change reported, so an old install becomes private at its next start instead of only warning.
import fs from "node:fs";
import path from "node:path";
import { UsageError } from "../core/errors.js";

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** Creates `dir` (0700) when missing, narrows it to 0700 when wider; returns what it changed. */
export function preparePrivateDir(dir: string): string[] {
  try {
    if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new UsageError(`Cannot use data_dir ${dir}: not a folder`);
    fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    const st = fs.statSync(dir);
    fs.accessSync(dir, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
    return narrow(dir, st.mode, PRIVATE_DIR_MODE);
  } catch (err) {
    throw asUsageError(dir, err);
  }
}

/** Creates `file` empty with mode 0600 if missing (SQLite gives -wal and -shm the mode of the database). */
export function createPrivateFile(file: string): void {
  try {
    fs.closeSync(fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_RDWR, PRIVATE_FILE_MODE));
  } catch (err) {
    throw asUsageError(path.dirname(file), err);
  }
}

/** Narrows each existing file to 0600; returns what it changed. */
export function narrowPrivateFiles(files: readonly string[]): string[] {
  const changed: string[] = [];
  for (const f of files) {
    let mode: number;
    try {
      mode = fs.statSync(f).mode;
    } catch {
      continue; // -wal and -shm come and go
    }
    changed.push(...narrow(f, mode, PRIVATE_FILE_MODE));
  }
  return changed;
}

function narrow(p: string, mode: number, want: number): string[] {
  if ((mode & 0o077) === 0) return [];
  fs.chmodSync(p, want);
  return [`${p} was readable by others (mode ${(mode & 0o777).toString(8)}); changed to ${want.toString(8)}`];
}

function asUsageError(dir: string, err: unknown): UsageError {
  if (err instanceof UsageError) return err;
  const e = err as NodeJS.ErrnoException;
  return new UsageError(`Cannot use data_dir ${dir}: ${e.code ?? ""}${e.code ? " " : ""}(${e.message.replace(/^[A-Z]+: /, "").split(",")[0]})`);
}
