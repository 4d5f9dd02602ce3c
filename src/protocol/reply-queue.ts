// Queues a session's reply text and writes it in one socket write when the session is about to
// wait for input, so a batch of pipelined commands costs one write (RFC 2920, RFC 2449 PIPELINING).
// end() flushes and half-closes; a peer that never reads is cut off after a grace period.
import type { Socket } from "node:net";

const END_GRACE_MS = 5000;

export class ReplyQueue {
  private text = "";

  constructor(private readonly socket: Socket) {}

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

  end(): void {
    this.flush();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), END_GRACE_MS).unref();
  }
}
