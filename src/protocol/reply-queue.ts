// Queues a session's reply text and writes it in one socket write when the session is about to
// wait for input, so a batch of pipelined commands costs one write (RFC 2920, RFC 2449 PIPELINING).
// Bounded by design: ready() holds the session (no more commands read) while the socket's write
// buffer is above WRITE_MARK, so a peer that never reads cannot grow memory; long answers are
// written through pushAll() in pieces with the same backpressure. end() flushes and half-closes;
// a peer that never reads is cut off after a grace period.
import type { Socket } from "node:net";
import { waitForDrain } from "./socket-drain.js";

/** Bytes of reply output (queued or in the socket's buffer) above which a session stops reading. */
export const WRITE_MARK = 64 * 1024;
const END_GRACE_MS = 5000;

export class ReplyQueue {
  private text = "";

  constructor(private socket: Socket) {}

  /** Writes to another socket from now on (the TLS socket after a handshake). */
  attach(socket: Socket): void {
    this.socket = socket;
  }

  push(text: string): void {
    this.text += text;
  }

  /** Drops what is queued (the connection is being cut mid-response). */
  discard(): void {
    this.text = "";
  }

  flush(): void {
    if (this.text && !this.socket.destroyed) this.socket.write(this.text);
    this.text = "";
  }

  /**
   * Resolves when the session may read its next command: at once while little output waits, else
   * after the peer has read enough for the socket's buffer to drain below the mark. Rejects with
   * ReaderClosed/ReaderTimeout when the peer goes away or stays silent past the idle timeout.
   */
  async ready(): Promise<void> {
    if (this.text.length >= WRITE_MARK) this.flush();
    while (!this.socket.destroyed && this.socket.writableLength > WRITE_MARK) await waitForDrain(this.socket);
  }

  /** Queues many lines (a long multi-line answer), writing and waiting for the peer as they pile up. */
  async pushAll(lines: Iterable<string>): Promise<void> {
    for (const line of lines) {
      this.text += line;
      if (this.text.length >= WRITE_MARK) await this.ready();
    }
  }

  end(): void {
    this.flush();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), END_GRACE_MS).unref();
  }
}
