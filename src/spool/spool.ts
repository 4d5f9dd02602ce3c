// The one way in for a message: SMTP (and later sendmail and bounces) open an IncomingMessage,
// stream the content into it, and commit. Local recipients are delivered straight into their
// Maildirs; off-site recipients go to the queue folder. commit() returns only after every file and
// folder entry is fsync'd, so the caller may then say 250. abort() leaves nothing behind.
import fs from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import { CrlfSizeCounter } from "../mailbox/crlf-size.js";
import { ensureMaildir, fsyncDir, mailboxPath, uniqueName } from "../mailbox/maildir.js";
import type { Route } from "../delivery/recipient-resolver.js";
import { DirSyncer } from "./dir-sync.js";
import { receivedHeader, returnPathHeader, type TraceInfo } from "./trace-headers.js";

export interface AcceptedRecipient {
  /** The address as the client gave it in RCPT TO. */
  readonly address: string;
  readonly route: Route;
}

export interface Envelope extends TraceInfo {
  /** Reverse-path; "" for the null sender <>. */
  readonly sender: string;
  readonly recipients: readonly AcceptedRecipient[];
}

/** One file being written: a Maildir copy or the queued copy for off-site recipients. */
interface Copy {
  readonly fh: FileHandle;
  readonly tmpPath: string;
  readonly finalDir: string;
  readonly name: string;
  size: number;
}

const FLUSH_BYTES = 64 * 1024;

export class Spool {
  private readonly dirSync = new DirSyncer();

  constructor(private readonly dataDir: string) {}

  /** Releases the cached folder handles. */
  async close(): Promise<void> {
    await this.dirSync.close();
  }

  get queueDir(): string {
    return path.join(this.dataDir, "queue");
  }

  async open(env: Envelope): Promise<IncomingMessage> {
    const copies: Copy[] = [];
    const prefixes: Buffer[] = [];
    const msg = new IncomingMessage(copies, prefixes, env, this.queueDir, this.dirSync);
    try {
      const seen = new Set<string>();
      const remote: string[] = [];
      for (const r of env.recipients) {
        for (const user of r.route.local) {
          if (seen.has(user)) continue;
          seen.add(user);
          const root = mailboxPath(this.dataDir, user);
          await ensureMaildir(root);
          copies.push(await openCopy(path.join(root, "tmp"), path.join(root, "new")));
          prefixes.push(Buffer.from(returnPathHeader(env.sender) + receivedHeader(env, r.address)));
        }
        for (const t of r.route.remote) if (!remote.includes(t)) remote.push(t);
      }
      if (remote.length) {
        const dir = path.join(this.queueDir, "messages");
        await ensureQueueDir(dir);
        copies.push(await openCopy(dir, dir, `${env.id}.tmp`, `${env.id}.eml`));
        prefixes.push(Buffer.from(receivedHeader(env, remote.length === 1 ? remote[0]! : null)));
        msg.remote = remote;
      }
    } catch (err) {
      await msg.abort();
      throw err;
    }
    return msg;
  }
}

async function openCopy(tmpDir: string, finalDir: string, tmpName?: string, finalName?: string): Promise<Copy> {
  const name = finalName ?? uniqueName();
  const tmpPath = path.join(tmpDir, tmpName ?? name);
  const fh = await fs.open(tmpPath, "wx", 0o600);
  return { fh, tmpPath, finalDir, name, size: 0 };
}

export class IncomingMessage {
  remote: string[] = [];
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bare LFs in the content (BDAT may carry them) make the CRLF size larger than the file. */
  private readonly crlf = new CrlfSizeCounter();
  private finished = false;

  constructor(
    private readonly copies: Copy[],
    private readonly prefixes: Buffer[],
    private readonly env: Envelope,
    private readonly queueDir: string,
    private readonly dirSync: DirSyncer,
  ) {}

  /** Takes pieces of content; they must not be modified afterwards. Writes in batches. */
  async write(pieces: readonly Buffer[]): Promise<void> {
    for (const p of pieces) {
      this.crlf.feed(p);
      this.pending.push(p);
      this.pendingBytes += p.length;
    }
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
  }

  private async flush(): Promise<void> {
    const body = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    await Promise.all(
      this.copies.map(async (c, i) => {
        const prefix = this.prefixes[i];
        const bufs = c.size === 0 && prefix ? [prefix, ...body] : body;
        if (bufs.length === 0) return;
        let total = 0;
        for (const b of bufs) total += b.length;
        let written = 0;
        let rest = bufs;
        // writev may write less than asked; continue from where it stopped.
        for (;;) {
          const { bytesWritten } = await c.fh.writev(rest);
          written += bytesWritten;
          if (written >= total) break;
          rest = sliceBuffers(bufs, written);
        }
        c.size += total;
      }),
    );
  }

  /** Makes every copy durable and visible; resolves when 250 may be sent. */
  async commit(): Promise<void> {
    if (this.finished) throw new Error("message already finished");
    await this.flush();
    await Promise.all(this.copies.map(async (c) => c.fh.datasync()));
    const dirs = new Set<string>();
    // The data is durable; closing and renaming can overlap.
    await Promise.all(
      this.copies.map(async (c) => {
        const closed = c.fh.close();
        // ",S=" is the file size, ",W=" the size with CRLF line ends (what POP3 RETR sends).
        const final = c.finalDir.endsWith(`${path.sep}new`) ? `${c.name},S=${c.size},W=${c.size + this.crlf.bareLf}` : c.name;
        await Promise.all([closed, fs.rename(c.tmpPath, path.join(c.finalDir, final))]);
        dirs.add(c.finalDir);
      }),
    );
    if (this.remote.length) {
      const envDir = path.join(this.queueDir, "envelopes");
      await ensureQueueDir(envDir);
      const record = {
        version: 1,
        id: this.env.id,
        sender: this.env.sender,
        received: this.env.receivedAt.toISOString(),
        recipients: this.remote.map((to) => ({ to, state: "pending", attempts: 0, last_reply: null })),
      };
      await writeFileDurably(path.join(envDir, `${this.env.id}.json`), JSON.stringify(record, null, 1) + "\n");
      dirs.add(envDir);
    }
    await Promise.all([...dirs].map((d) => this.dirSync.sync(d)));
    this.finished = true;
  }

  async abort(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await Promise.all(
      this.copies.map(async (c) => {
        await c.fh.close().catch(() => undefined);
        await fs.unlink(c.tmpPath).catch(() => undefined);
      }),
    );
  }
}

/** Creates a queue folder; when new, fsyncs queue/ and data_dir so its entry is durable. */
async function ensureQueueDir(dir: string): Promise<void> {
  if ((await fs.mkdir(dir, { recursive: true })) === undefined) return;
  await fsyncDir(path.dirname(dir));
  await fsyncDir(path.dirname(path.dirname(dir)));
}

function sliceBuffers(bufs: readonly Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of bufs) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}


/** Writes a small file to a temporary name, fsyncs it and renames it into place. */
export async function writeFileDurably(file: string, content: string | Buffer): Promise<void> {
  const tmp = `${file}.tmp${process.pid}`;
  const fh = await fs.open(tmp, "w", 0o600);
  try {
    await fh.writeFile(content);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
}
