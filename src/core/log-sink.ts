// Where the JSON log lines go: stdout, without ever blocking the server. A mail server must keep
// taking mail when whoever reads its log (a pipe to `tee`, journald, a stopped pager) is slow or gone:
// on a pipe or socket, lines are written through a non-blocking handle and at most MAX_BACKLOG bytes
// wait in memory; past that, lines are dropped and counted, and a line saying how many follows once
// the reader catches up. A file or terminal takes plain synchronous writes. Nothing here can keep the
// process from exiting: flush() gives up after its deadline.
import fs from "node:fs";
import net from "node:net";

const MAX_BACKLOG = 4 * 1024 * 1024;

export interface LogSink {
  write(line: string): void;
  /** Resolves when everything queued is written, or when timeoutMs has passed. */
  flush(timeoutMs: number): Promise<void>;
}

/** The sink for a file descriptor (1 = stdout), chosen by what the descriptor is. */
export function openLogSink(fd = 1): LogSink {
  let stat: fs.Stats | null = null;
  try {
    stat = fs.fstatSync(fd);
  } catch {
    return { write: () => undefined, flush: async () => undefined }; // stdout closed: nowhere to log
  }
  if (stat.isFIFO() || stat.isSocket()) return new NonBlockingSink(new net.Socket({ fd, readable: false, writable: true }));
  return new SyncSink(fd);
}

/** Files and terminals: a write either completes or fails; a failure drops the line. */
class SyncSink implements LogSink {
  constructor(private readonly fd: number) {}
  write(line: string): void {
    try {
      fs.writeSync(this.fd, line);
    } catch {
      // Disk full or stdout gone: losing a log line must not take the server down.
    }
  }
  async flush(): Promise<void> {}
}

/** Pipes and sockets: a libuv stream (O_NONBLOCK), a bounded backlog, and counted drops. */
export class NonBlockingSink implements LogSink {
  private dropped = 0;
  private dead = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly maxBacklog = MAX_BACKLOG,
  ) {
    socket.unref(); // an unread log must not keep the process alive
    socket.on("error", () => {
      this.dead = true; // EPIPE: the reader is gone for good
      socket.destroy();
    });
    socket.on("drain", () => this.reportDrops());
  }

  write(line: string): void {
    if (this.dead) return;
    if (this.socket.writableLength >= this.maxBacklog) {
      this.dropped++;
      return;
    }
    this.socket.write(line);
  }

  private reportDrops(): void {
    if (this.dropped === 0 || this.dead) return;
    const n = this.dropped;
    this.dropped = 0;
    this.socket.write(`${JSON.stringify({ level: 40, time: new Date().toISOString(), pid: process.pid, dropped: n, msg: "log lines dropped: the log reader was too slow" })}\n`);
  }

  flush(timeoutMs: number): Promise<void> {
    if (this.dead || this.socket.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.socket.off("drain", done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.socket.on("drain", done);
    });
  }
}
