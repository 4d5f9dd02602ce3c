// Collects what a test client's socket receives, as latin1 text, and hands it out piece by piece:
// take(find) waits until find() locates the end of the next piece. For protocol unit tests that
// read replies (SMTP) or responses (POP3) over a loopback socket; trusts nothing it receives.
import type { Socket } from "node:net";

export class SocketText {
  private buf = "";
  private wake: (() => void) | null = null;
  closed = false;

  constructor(socket: Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      this.buf += d;
      this.wake?.();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake?.();
    });
  }

  /**
   * Waits until find(text) returns the end of the next piece (an index, -1 while incomplete), then
   * removes and returns text up to there plus `skip` more characters; null when the socket closed first.
   */
  async take(find: (text: string) => number, skip = 0, timeoutMs = 3000): Promise<string | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = find(this.buf);
      if (end >= 0) {
        const piece = this.buf.slice(0, end);
        this.buf = this.buf.slice(end + skip);
        return piece;
      }
      if (this.closed) return null;
      if (Date.now() > deadline) throw new Error(`nothing complete within ${timeoutMs} ms; have ${JSON.stringify(this.buf.slice(0, 200))}`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  /** Received and not taken yet. */
  get pending(): string {
    return this.buf;
  }
}
