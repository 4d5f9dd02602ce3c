// Tools for hostile-client tests: the server's resident memory (VmRSS of the child process) and
// floods from clients that write nonstop and never read (their sockets paused), on loopback only.
import fs from "node:fs";
import net from "node:net";

/** Resident set size of a process in bytes, from /proc/<pid>/status (Linux). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

export interface FloodResult {
  /** Highest RSS of the server seen while the flood ran. */
  readonly peakRss: number;
  /** Bytes the clients managed to write in total. */
  readonly written: number;
}

/**
 * Opens `connections` sockets to port that send `payload` over and over as fast as the server takes
 * it, for `ms` milliseconds, never reading a byte of the answers; samples the server's RSS meanwhile.
 * `first` is a dialogue done before the flood (e.g. EHLO, so pipelining is allowed): its text is
 * sent, and the flood starts once what the server said matches `until`.
 */
export async function flood(opts: {
  port: number;
  pid: number;
  payload: Buffer | (() => Buffer);
  connections: number;
  ms: number;
  first?: { send: string; until: RegExp };
}): Promise<FloodResult> {
  const sockets: net.Socket[] = [];
  let written = 0;
  let peakRss = rssBytes(opts.pid);
  let running = true;
  const sample = setInterval(() => (peakRss = Math.max(peakRss, rssBytes(opts.pid))), 50);
  const pumps = Array.from({ length: opts.connections }, async () => {
    const s = net.connect(opts.port, "127.0.0.1");
    sockets.push(s);
    s.on("error", () => undefined);
    await new Promise<void>((resolve, reject) => s.once("connect", resolve).once("error", reject));
    if (opts.first) {
      const { send, until } = opts.first;
      let heard = "";
      s.write(send);
      await new Promise<void>((resolve) => {
        const onData = (d: Buffer) => {
          heard += d.toString("latin1");
          if (until.test(heard)) {
            s.off("data", onData);
            resolve();
          }
        };
        s.on("data", onData).once("close", () => resolve());
      });
    }
    s.pause(); // never read again: the answers pile up in the server
    while (running && !s.destroyed) {
      const chunk = typeof opts.payload === "function" ? opts.payload() : opts.payload;
      written += chunk.length;
      if (!s.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(t);
            s.off("drain", done).off("close", done);
            resolve();
          };
          const t = setTimeout(done, 100);
          s.once("drain", done).once("close", done);
        });
      } else {
        await new Promise((r) => setImmediate(r));
      }
    }
  });
  await new Promise((r) => setTimeout(r, opts.ms));
  running = false;
  clearInterval(sample);
  peakRss = Math.max(peakRss, rssBytes(opts.pid));
  for (const s of sockets) s.destroy();
  await Promise.allSettled(pumps);
  return { peakRss, written };
}

/** Repeats a command line until the buffer is about `size` bytes (one write carries many commands). */
export function repeated(line: string, size = 64 * 1024): Buffer {
  return Buffer.from(line.repeat(Math.max(1, Math.floor(size / line.length))), "latin1");
}

export const MB = 1024 * 1024;
