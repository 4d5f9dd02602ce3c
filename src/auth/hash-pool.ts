// Verifies passwords in a worker thread with a bounded queue (issue 7, item 5). scrypt on libuv's
// 4-thread pool made 100 password-guessing connections delay every fsync, so SMTP delivery took
// seconds. Here hashing has its own thread; when the queue is full a login is refused ("busy")
// instead of queueing without bound. The worker is unref'd: it never keeps the process alive.
import { Worker } from "node:worker_threads";
import type { VerifyRequest, VerifyResponse } from "./hash-worker.js";

export type VerifyResult = "match" | "mismatch" | "busy";

export interface PasswordVerifier {
  /** Checks `password` against a stored hash; null (no such user) spends the same time and mismatches. */
  verify(password: string, hash: string | null): Promise<VerifyResult>;
}

export interface HashPoolOptions {
  /** Verifications waiting or running at most; more are refused as "busy". */
  readonly maxQueued: number;
}

interface Pending {
  readonly resolve: (r: VerifyResult) => void;
}

export class HashPool implements PasswordVerifier {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly opts: HashPoolOptions = { maxQueued: 64 }) {}

  verify(password: string, hash: string | null): Promise<VerifyResult> {
    if (this.pending.size >= this.opts.maxQueued) return Promise.resolve("busy");
    const worker = this.ensureWorker();
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, { resolve });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ id, password, hash } satisfies VerifyRequest);
    });
  }

  /** Verifications waiting or running. */
  get queued(): number {
    return this.pending.size;
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    this.failAll();
    if (w) await w.terminate();
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL("./hash-worker.js", import.meta.url));
    w.unref();
    w.on("message", (res: VerifyResponse) => {
      const p = this.pending.get(res.id);
      if (!p) return;
      this.pending.delete(res.id);
      if (this.pending.size === 0) w.unref();
      p.resolve(res.match ? "match" : "mismatch");
    });
    // A crashed worker fails what it held as "busy" (the client retries); the next call starts a new one.
    const lost = (): void => {
      if (this.worker === w) this.worker = null;
      this.failAll();
    };
    w.on("error", lost);
    w.on("exit", lost);
    this.worker = w;
    return w;
  }

  private failAll(): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.resolve("busy");
  }
}
