// The messages under a path given to `petrel spam train|classify`: a message file, an mbox file (one or
// more messages, each after a "From " line; ">From " unquoted as mboxrd writes it), a Maildir (the files
// of cur/ and new/) or a plain folder of message files. Streams: an mbox of any size is read line by line
// and each message kept only up to MAX_SCAN_BYTES, all the tokenizer reads. Trusts nothing: a path that
// is missing or unreadable is a UsageError naming it (checkPaths, before any training starts).
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import readline from "node:readline";
import { UsageError } from "../../core/errors.js";
import { MAX_SCAN_BYTES } from "./tokenizer.js";

export interface SourceMessage {
  /** The file, or "file#n" for the n-th message (from 1) of an mbox. */
  readonly label: string;
  /** The message, cut at MAX_SCAN_BYTES (plus the mbox "From " line). */
  readonly content: Buffer;
}

type PathKind = "file" | "maildir" | "folder";

/** Checks every path before anything is done; throws one UsageError for the first bad one. */
export async function checkPaths(paths: readonly string[]): Promise<void> {
  for (const p of paths) await pathKind(p);
}

async function pathKind(p: string): Promise<PathKind> {
  let st: fs.Stats;
  try {
    st = await fsp.stat(p);
    await fsp.access(p, fs.constants.R_OK | (st.isDirectory() ? fs.constants.X_OK : 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`Cannot read ${p}: ${code === "ENOENT" ? "no such file or folder" : code === "EACCES" ? "permission denied" : (code ?? (err as Error).message)}`);
  }
  if (st.isFile()) return "file";
  if (!st.isDirectory()) throw new UsageError(`Cannot read ${p}: not a file or folder`);
  const sub = await Promise.all(["cur", "new"].map((d) => fsp.stat(path.join(p, d)).then((s) => s.isDirectory(), () => false)));
  return sub.some(Boolean) ? "maildir" : "folder";
}

/** Every message under the paths, in order (Maildir and folder entries sorted by name). */
export async function* readMessages(paths: readonly string[]): AsyncGenerator<SourceMessage> {
  for (const p of paths) {
    const kind = await pathKind(p);
    if (kind === "file") yield* readFile(p);
    else {
      const folders = kind === "maildir" ? ["cur", "new"].map((d) => path.join(p, d)) : [p];
      for (const folder of folders) {
        const names = await fsp.readdir(folder).catch(() => [] as string[]);
        for (const name of names.sort()) {
          if (name.startsWith(".")) continue;
          const file = path.join(folder, name);
          if ((await fsp.stat(file).catch(() => null))?.isFile()) yield* readFile(file);
        }
      }
    }
  }
}

/** A file: an mbox when it starts with "From ", else one message (its first MAX_SCAN_BYTES). */
async function* readFile(file: string): AsyncGenerator<SourceMessage> {
  const handle = await fsp.open(file, "r");
  let head: Buffer;
  try {
    const buf = Buffer.alloc(MAX_SCAN_BYTES);
    const { bytesRead } = await handle.read(buf, 0, MAX_SCAN_BYTES, 0);
    head = buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  if (head.subarray(0, 5).toString("latin1") !== "From ") {
    yield { label: file, content: head };
    return;
  }
  yield* readMbox(file);
}

/** A "From " line as mbox writers put them: "From sender Thu Aug 22 13:17:22 2002". */
const FROM_LINE = /^From \S*\s+[A-Z][a-z]{2} [A-Z][a-z]{2}\s+\d{1,2} \d{1,2}:\d{2}/;

/**
 * Splits an mbox at "From " lines that follow an empty line (or start the file), or, for mboxes glued
 * together with cat, any "From " line with the sender-and-date shape. A file holding a single message is
 * labelled with its name alone.
 */
async function* readMbox(file: string): AsyncGenerator<SourceMessage> {
  // latin1 maps every byte to one character and back, so 8-bit content survives the line splitting.
  const lines = readline.createInterface({ input: fs.createReadStream(file, { encoding: "latin1" }), crlfDelay: Infinity });
  let current: string[] = [];
  let size = 0;
  let previousEmpty = true;
  let n = 0;
  let first: Buffer | null = null;
  const take = (): Buffer => {
    // The empty line before the next "From " belongs to the mbox format, not to the message.
    if (current.length > 1 && current[current.length - 1] === "") current.pop();
    const content = Buffer.from(current.join("\n") + "\n", "latin1");
    current = [];
    size = 0;
    n++;
    return content;
  };
  for await (const line of lines) {
    if (current.length > 0 && line.startsWith("From ") && (previousEmpty || FROM_LINE.test(line))) {
      const content = take();
      if (n === 1) first = content;
      else {
        if (first) yield { label: `${file}#1`, content: first };
        first = null;
        yield { label: `${file}#${n}`, content };
      }
    }
    previousEmpty = line === "";
    if (size > MAX_SCAN_BYTES) continue; // the rest of a long message is never read
    const unquoted = /^>+From /.test(line) ? line.slice(1) : line;
    current.push(unquoted);
    size += unquoted.length + 1;
  }
  if (current.length === 0) return;
  const last = take();
  if (n === 1) yield { label: file, content: last };
  else {
    if (first) yield { label: `${file}#1`, content: first };
    yield { label: `${file}#${n}`, content: last };
  }
}
