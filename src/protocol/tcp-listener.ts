// Accepts TCP connections on configured addresses and runs one session per connection, for any
// protocol. Enforces the connection limit and drives graceful shutdown: stop accepting, ask every
// session to finish (bounded by a grace period), then destroy what is left.
import net from "node:net";
import type { Logger } from "../core/log.js";
import { splitHostPort } from "../config/schema.js";

export interface Session {
  run(): Promise<void>;
  /** Finish soon: idle sessions close now, busy ones after their current transaction. */
  shutdown(): void;
}

export interface ListenerOptions {
  readonly name: string;
  readonly addresses: readonly string[];
  readonly maxConnections: number;
  /** Text sent (then the socket is closed) when the limit is reached. */
  readonly busyReply: string;
  readonly createSession: (socket: net.Socket, log: Logger) => Session;
}

export interface BoundAddress {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

let sessionCounter = 0;

export class TcpListener {
  private readonly servers: net.Server[] = [];
  private readonly sessions = new Map<Session, net.Socket>();

  constructor(
    private readonly opts: ListenerOptions,
    private readonly log: Logger,
  ) {}

  get connections(): number {
    return this.sessions.size;
  }

  async start(): Promise<BoundAddress[]> {
    const bound: BoundAddress[] = [];
    for (const addr of this.opts.addresses) {
      const { host, port } = splitHostPort(addr);
      const server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ host, port, backlog: 511 }, () => {
          server.off("error", reject);
          resolve();
        });
      });
      server.on("error", (err) => this.log.error({ err, listener: this.opts.name }, "listener error"));
      const info = server.address() as net.AddressInfo;
      bound.push({ name: this.opts.name, host: info.address, port: info.port });
      this.log.info({ listener: this.opts.name, address: info.address, port: info.port }, "listening");
      this.servers.push(server);
    }
    return bound;
  }

  private accept(socket: net.Socket): void {
    socket.on("error", () => undefined); // reported through the session's reader
    if (this.sessions.size >= this.opts.maxConnections) {
      this.log.warn({ listener: this.opts.name, peer: socket.remoteAddress }, "connection limit reached");
      socket.end(this.opts.busyReply);
      setTimeout(() => socket.destroy(), 2000).unref();
      return;
    }
    const log = this.log.child({ session: (++sessionCounter).toString(36), listener: this.opts.name });
    const session = this.opts.createSession(socket, log);
    this.sessions.set(session, socket);
    log.debug({ peer: socket.remoteAddress, port: socket.remotePort }, "connected");
    session
      .run()
      .catch((err) => log.error({ err }, "session crashed"))
      .finally(() => {
        this.sessions.delete(session);
        socket.destroy();
        log.debug("disconnected");
      });
  }

  /** Stops accepting, lets sessions finish for up to graceMs, then cuts the rest. */
  async stop(graceMs: number): Promise<void> {
    // close() stops accepting at once; its callback waits for the open connections to end.
    const closed = Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    for (const s of this.sessions.keys()) s.shutdown();
    const deadline = Date.now() + graceMs;
    while (this.sessions.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const sock of this.sessions.values()) sock.destroy();
    while (this.sessions.size) await new Promise((r) => setTimeout(r, 10));
    await closed;
  }
}
