// A raw POP3 client over a socket for tests that must see bytes exactly: send lines (pipelined or
// not), read single-line replies and multi-line bodies (still byte-stuffed), and notice when the
// server closes. Only ever connects to loopback.
import net from "node:net";

const CRLF_DOT_CRLF = Buffer.from("\r\n.\r\n");
const DOT_CRLF = Buffer.from(".\r\n");

export interface MultiLine {
  /** The status line, without CRLF. */
  readonly status: string;
  /** For +OK: the bytes between the status line and the final ".CRLF" (stuffed, CRLF included). */
  readonly body: Buffer;
}

export class RawPop3 {
  private buf: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => undefined);
  }

  /** `localAddress` (e.g. 127.0.0.7) makes the connection come from another loopback address. */
  static async connect(port: number, host = "127.0.0.1", localAddress?: string): Promise<RawPop3> {
    const socket = net.connect({ port, host, localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return new RawPop3(socket);
  }

  /** A client on a socket that is already connected: the TLS socket after STLS. */
  static over(socket: net.Socket): RawPop3 {
    return new RawPop3(socket);
  }

  /** Connects and reads the greeting. */
  static async open(port: number, localAddress?: string): Promise<{ client: RawPop3; greeting: string }> {
    const client = await RawPop3.connect(port, "127.0.0.1", localAddress);
    return { client, greeting: await client.line() };
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Reads one line (without its CRLF). */
  async line(timeoutMs = 5000): Promise<string> {
    const i = await this.waitFor(() => {
      const at = this.buf.indexOf("\r\n");
      return at < 0 ? null : at;
    }, timeoutMs);
    const text = this.buf.subarray(0, i).toString("latin1");
    this.buf = this.buf.subarray(i + 2);
    return text;
  }

  /** Sends a command line (CRLF added) and returns the one-line reply. */
  async command(line: string): Promise<string> {
    this.write(line + "\r\n");
    return this.line();
  }

  /** Reads a reply that is multi-line when it starts with +OK. */
  async multi(timeoutMs = 5000): Promise<MultiLine> {
    const status = await this.line(timeoutMs);
    if (!status.startsWith("+OK")) return { status, body: Buffer.alloc(0) };
    const end = await this.waitFor(() => {
      if (this.buf.subarray(0, 3).equals(DOT_CRLF)) return 0;
      const at = this.buf.indexOf(CRLF_DOT_CRLF);
      return at < 0 ? null : at + 2;
    }, timeoutMs);
    const body = this.buf.subarray(0, end);
    this.buf = this.buf.subarray(end + 3);
    return { status, body: Buffer.from(body) };
  }

  /** Sends a command and reads its multi-line reply. */
  async multiCommand(line: string): Promise<MultiLine> {
    this.write(line + "\r\n");
    return this.multi();
  }

  /** Waits until the server closes the connection. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    await this.waitFor(() => (this.closed ? 0 : null), timeoutMs);
  }

  /** Bytes received but not read yet. */
  get pending(): string {
    return this.buf.toString("latin1");
  }

  close(): void {
    this.socket.destroy();
  }

  private async waitFor(found: () => number | null, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = found();
      if (at !== null) return at;
      if (this.closed) throw new Error(`connection closed; unread: ${JSON.stringify(this.pending.slice(0, 500))}`);
      if (Date.now() > deadline) throw new Error(`timeout waiting for the server; unread: ${JSON.stringify(this.pending.slice(0, 500))}`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 50);
      });
      this.waiter = null;
    }
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}

/** Removes POP3 byte-stuffing from a multi-line body (RFC 1939 §3). */
export function unstuff(body: Buffer): Buffer {
  const text = body.toString("latin1").replace(/(^|\r\n)\.\./g, "$1.");
  return Buffer.from(text, "latin1");
}
