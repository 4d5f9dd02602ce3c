// Accepts TCP connections on configured addresses and runs one session per connection, for any
// protocol; on an implicit-TLS port (465, 995) the TLS handshake comes first, bounded in time.
// Enforces the connection limits (all clients, and per IP address) and drives graceful shutdown: stop accepting, ask every
// session to finish (bounded by a grace period), then destroy what is left. Near the process's
// open-file limit (ulimit -n) it refuses new connections itself, with a log line, because libuv
// silently accepts and closes connections when accept() fails with EMFILE.
import fs from "node:fs";
import net from "node:net";
import type { Logger } from "../core/log.js";
import { splitHostPort } from "../config/schema.js";
import { Connection, TlsHandshakeFailed, normalisePeer, type TlsContextSource } from "./connection.js";

export interface Session {
  run(): Promise<void>;
  /** Finish soon: idle sessions close now, busy ones after their current transaction. */
  shutdown(): void;
  /** The grace period is over: the connection is cut right after this (for the session's log). */
  cut(): void;
}

export interface ListenerOptions {
  readonly name: string;
  readonly addresses: readonly string[];
  readonly maxConnections: number;
  /** Connections one IP address may hold at once on this listener. */
  readonly maxConnectionsPerIp?: number;
  /** Addresses the per-IP cap does not apply to (loopback by default: local programs, webmail). */
  readonly perIpExceptions?: net.BlockList;
  /** Text sent (then the socket is closed) when a limit is reached; a function gets which one. */
  readonly busyReply: string | ((limit: "total" | "per-ip") => string);
  /** The certificate for STARTTLS/STLS, and for the handshake itself on an implicit-TLS port. */
  readonly tls?: TlsContextSource | null;
  /** The handshake comes first (RFC 8314 implicit TLS: submissions 465, pop3s 995). */
  readonly implicitTls?: boolean;
  readonly handshakeTimeoutMs?: number;
  readonly createSession: (conn: Connection, log: Logger) => Session;
}

export interface BoundAddress {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

let sessionCounter = 0;

/** File descriptors kept free for what sessions open (Maildir files, the database, logs). */
const FD_RESERVE = 24;
/** How long a count of open descriptors is trusted. */
const FD_RECOUNT_MS = 100;
/** At most one "open-file limit" warning per listener in this many milliseconds. */
const FD_WARN_INTERVAL_MS = 10_000;

/** The soft RLIMIT_NOFILE from /proc/self/limits, or null where that cannot be read (not Linux). */
function openFileLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync("/proc/self/limits", "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function openFiles(): number | null {
  try {
    return fs.readdirSync("/proc/self/fd").length;
  } catch {
    return null;
  }
}

export class TcpListener {
  private readonly servers: net.Server[] = [];
  private readonly sessions = new Map<Session, net.Socket>();
  /** Sockets of an implicit-TLS port still in their handshake (no session yet). */
  private readonly handshaking = new Set<net.Socket>();
  /** Open connections per client IP address. */
  private readonly perIp = new Map<string, number>();
  private stopping = false;
  private readonly fdLimit = openFileLimit();
  private lastFdWarning = 0;
  private refusedForFds = 0;
  /** Open descriptors as last counted, when, and connections accepted since (see nearFdLimit). */
  private fdCount = { open: 0, at: 0, acceptedSince: 0 };

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
      // Accept errors (EMFILE when libuv cannot even shed the connection, ENFILE, ENOMEM) land here;
      // the server keeps listening.
      server.on("error", (err: NodeJS.ErrnoException) => this.log.error({ err, code: err.code, listener: this.opts.name }, "listener error: cannot accept a connection"));
      server.on("drop", (data) => this.log.warn({ listener: this.opts.name, peer: data?.remoteAddress }, "connection dropped by the listener"));
      const info = server.address() as net.AddressInfo;
      bound.push({ name: this.opts.name, host: info.address, port: info.port });
      this.log.info({ listener: this.opts.name, address: info.address, port: info.port }, "listening");
      this.servers.push(server);
    }
    return bound;
  }

  private accept(socket: net.Socket): void {
    socket.on("error", () => undefined); // reported through the session's reader
    const peer = normalisePeer(socket.remoteAddress);
    if (this.sessions.size + this.handshaking.size >= this.opts.maxConnections) {
      this.log.warn({ listener: this.opts.name, peer }, "connection limit reached");
      this.turnAway(socket, "total");
      return;
    }
    const perIp = this.opts.maxConnectionsPerIp;
    if (perIp !== undefined && (this.perIp.get(peer) ?? 0) >= perIp && !this.exempt(peer)) {
      this.log.warn({ listener: this.opts.name, peer, limit: perIp }, "per-IP connection limit reached");
      this.turnAway(socket, "per-ip");
      return;
    }
    if (this.nearFdLimit()) {
      this.refusedForFds++;
      const now = Date.now();
      if (now - this.lastFdWarning >= FD_WARN_INTERVAL_MS) {
        this.lastFdWarning = now;
        this.log.warn(
          { listener: this.opts.name, peer, open_files: openFiles(), limit: this.fdLimit, refused: this.refusedForFds },
          "open-file limit (ulimit -n) nearly reached: refusing connections",
        );
        this.refusedForFds = 0;
      }
      // Closed at once, not after a grace period: each refused socket would hold a descriptor.
      if (!this.opts.implicitTls) socket.end(this.reply("total"));
      socket.destroy();
      return;
    }
    this.perIp.set(peer, (this.perIp.get(peer) ?? 0) + 1);
    const log = this.log.child({ session: (++sessionCounter).toString(36), listener: this.opts.name });
    log.debug({ peer, port: socket.remotePort }, "connected");
    const conn = new Connection(socket, { listener: this.opts.name, tls: this.opts.tls ?? null, handshakeTimeoutMs: this.opts.handshakeTimeoutMs });
    const release = () => {
      const n = (this.perIp.get(peer) ?? 1) - 1;
      if (n > 0) this.perIp.set(peer, n);
      else this.perIp.delete(peer);
      socket.destroy();
      log.debug("disconnected");
    };
    if (!this.opts.implicitTls) return this.runSession(conn, log, release);
    this.handshaking.add(socket);
    conn
      .startTls()
      .then(
        () => {
          this.handshaking.delete(socket);
          if (this.stopping) return release();
          this.runSession(conn, log, release);
        },
        (err: unknown) => {
          this.handshaking.delete(socket);
          const reason = err instanceof TlsHandshakeFailed ? err.reason : String(err);
          log.info({ peer, reason, code: err instanceof TlsHandshakeFailed ? err.code : undefined }, "TLS handshake failed");
          release();
        },
      );
  }

  private runSession(conn: Connection, log: Logger, release: () => void): void {
    const session = this.opts.createSession(conn, log);
    this.sessions.set(session, conn.socket);
    session
      .run()
      .catch((err) => log.error({ err }, "session crashed"))
      .finally(() => {
        this.sessions.delete(session);
        conn.socket.destroy();
        release();
      });
  }

  private exempt(peer: string): boolean {
    const list = this.opts.perIpExceptions;
    if (!list) return false;
    return list.check(peer, net.isIPv6(peer) ? "ipv6" : "ipv4");
  }

  private reply(limit: "total" | "per-ip"): string {
    const r = this.opts.busyReply;
    return typeof r === "string" ? r : r(limit);
  }

  /**
   * Answers a refused connection and closes it. On an implicit-TLS port nothing can be said before a
   * handshake, and a handshake for a client being refused is the costly work the limit exists to
   * avoid: the connection is closed without a word.
   */
  private turnAway(socket: net.Socket, limit: "total" | "per-ip"): void {
    if (this.opts.implicitTls) {
      socket.destroy();
      return;
    }
    socket.end(this.reply(limit));
    setTimeout(() => socket.destroy(), 2000).unref();
  }

  /**
   * True when the accepted socket leaves fewer than FD_RESERVE descriptors below the limit. Counting
   * /proc/self/fd costs a read of every entry, so a flood of connections does it at most every
   * FD_RECOUNT_MS and adds the connections accepted since (each holds one more descriptor).
   */
  private nearFdLimit(): boolean {
    if (this.fdLimit === null) return false;
    const now = Date.now();
    const c = this.fdCount;
    if (now - c.at >= FD_RECOUNT_MS) {
      const open = openFiles();
      if (open === null) return false;
      this.fdCount = { open, at: now, acceptedSince: 0 };
      return open > this.fdLimit - FD_RESERVE;
    }
    c.acceptedSince++;
    return c.open + c.acceptedSince > this.fdLimit - FD_RESERVE;
  }

  /** Stops accepting, lets sessions finish for up to graceMs, then cuts the rest. */
  async stop(graceMs: number): Promise<void> {
    // close() stops accepting at once; its callback waits for the open connections to end.
    const closed = Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.stopping = true;
    for (const sock of this.handshaking) sock.destroy();
    for (const s of this.sessions.keys()) s.shutdown();
    const deadline = Date.now() + graceMs;
    while (this.sessions.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const [session, sock] of this.sessions) {
      session.cut();
      sock.destroy();
    }
    while (this.sessions.size) await new Promise((r) => setTimeout(r, 10));
    await closed;
  }
}
