// A raw SMTP client over a socket for tests that must control bytes exactly (pipelining, BDAT,
// smuggling, limits): send bytes, then read complete replies (multi-line aware).
import net from "node:net";
import tls from "node:tls";

export interface RawReply {
  readonly code: number;
  readonly lines: string[];
  /** The reply exactly as received, CRLFs included. */
  readonly raw: string;
}

export class RawSmtp {
  private buf = "";
  private waiter: (() => void) | null = null;
  closed = false;

  private constructor(private socket: net.Socket) {
    this.listen(socket);
  }

  private listen(socket: net.Socket): void {
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      this.buf += d;
      this.waiter?.();
    });
    socket.on("close", () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on("error", () => undefined);
  }

  /** Connects to an implicit-TLS port (465); the certificate is not verified. */
  static async connectTls(port: number, host = "127.0.0.1"): Promise<RawSmtp> {
    const socket = tls.connect({ port, host, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    return new RawSmtp(socket);
  }

  /**
   * Runs the client side of a TLS handshake on this connection (after the server's 220 to STARTTLS).
   * Whatever was unread before is dropped from the buffer and returned (it should be nothing).
   */
  async startTls(): Promise<{ unread: string; socket: tls.TLSSocket }> {
    const unread = this.buf;
    this.buf = "";
    const raw = this.socket;
    raw.removeAllListeners("data");
    const socket = tls.connect({ socket: raw, rejectUnauthorized: false, servername: "mx.petrel.test" });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    this.socket = socket;
    this.listen(socket);
    return { unread, socket };
  }

  /** localAddress: the client's own address, e.g. "127.0.0.2" to look like another loopback host. */
  static async connect(port: number, host = "127.0.0.1", localAddress?: string): Promise<RawSmtp> {
    const socket = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return new RawSmtp(socket);
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Reads one complete reply; throws after timeoutMs or if the connection closes first. */
  async reply(timeoutMs = 5000): Promise<RawReply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m[0].length);
        const lines = m[0].split("\r\n").filter((l) => l !== "");
        return { code: Number(m[0].slice(0, 3)), lines: lines.map((l) => l.slice(4)), raw: m[0] };
      }
      if (this.closed) throw new Error(`connection closed; unread: ${JSON.stringify(this.buf)}`);
      if (Date.now() > deadline) throw new Error(`timeout waiting for reply; unread: ${JSON.stringify(this.buf)}`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 50);
      });
      this.waiter = null;
    }
  }

  /** Sends a command line (CRLF added) and returns its reply. */
  async command(line: string): Promise<RawReply> {
    this.write(line + "\r\n");
    return this.reply();
  }

  /** Waits until the server closes the connection. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("server did not close the connection");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Unread bytes (for asserting nothing more was sent). */
  get pending(): string {
    return this.buf;
  }

  close(): void {
    this.socket.destroy();
  }
}
