// A scriptable SMTP server for tests of the outbound client (and, later, end-to-end relay tests): on
// 127.0.0.1 (or another loopback address) port 0, it answers per script (extensions, per-recipient
// replies, a refused EHLO, STARTTLS, implicit TLS, AUTH, silence, a drop mid-DATA) and records what came.
// Uses the server's own reader and dot decoder; keeps bodies only up to 1 MB (size and SHA-256 always).
import { createHash } from "node:crypto";
import net from "node:net";
import tls from "node:tls";
import { DotDecoder } from "../protocol/dot-decoder.js";
import { SocketReader } from "../protocol/socket-reader.js";

export interface SinkScript {
  readonly greeting?: string;
  /** EHLO keywords, default PIPELINING, 8BITMIME, SMTPUTF8, SIZE 10485760, DSN. "refuse": 502 to EHLO. */
  readonly extensions?: readonly string[] | "refuse";
  /** STARTTLS offered (plaintext only) and run with this context; also the context of implicit TLS. */
  readonly tls?: tls.SecureContext;
  readonly implicitTls?: boolean;
  /** AUTH offered (after TLS) with these mechanisms; user → password. */
  readonly auth?: { mechanisms: readonly string[]; users: ReadonlyMap<string, string> };
  readonly mail?: (from: string) => string;
  readonly rcpt?: (to: string) => string;
  /** The reply at the end of DATA or BDAT LAST; default "250 2.0.0 Ok: queued". */
  readonly dataEnd?: (tx: SinkTransaction) => string;
  /** Closes the connection after this many octets of content. */
  readonly dropAfterBytes?: number;
  /** Never answers this verb (or the greeting): for timeout tests. */
  readonly silentOn?: "GREETING" | "EHLO" | "MAIL" | "RCPT" | "DATA" | "DATA-END";
}

export interface SinkTransaction {
  mailLine: string;
  rcptLines: string[];
  size: number;
  sha256: string;
  /** Only while under 1 MB. */
  body: Buffer | null;
  via: "DATA" | "BDAT";
}

export interface SinkSession {
  readonly commands: string[];
  /** For each command: true when more input was already waiting behind it (it came pipelined). */
  readonly pipelined: boolean[];
  tls: boolean;
  authUser: string | null;
  readonly transactions: SinkTransaction[];
}

const KEEP = 1024 * 1024;
const DEFAULT_EXT = ["PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 10485760", "DSN"];

export class SmtpSink {
  readonly sessions: SinkSession[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server, private readonly script: SinkScript) {}

  static async start(script: SinkScript = {}, host = "127.0.0.1"): Promise<SmtpSink> {
    const server = net.createServer();
    const sink = new SmtpSink(server, script);
    server.on("connection", (s) => {
      sink.sockets.add(s);
      s.on("close", () => sink.sockets.delete(s));
      s.on("error", () => undefined);
      void sink.serve(s).catch(() => s.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    return sink;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Every transaction of every session, in order. */
  get transactions(): SinkTransaction[] {
    return this.sessions.flatMap((s) => s.transactions);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async serve(raw: net.Socket): Promise<void> {
    const sc = this.script;
    const session: SinkSession = { commands: [], pipelined: [], tls: false, authUser: null, transactions: [] };
    this.sessions.push(session);
    let socket: net.Socket = raw;
    if (sc.implicitTls && sc.tls) {
      socket = await secure(raw, sc.tls);
      session.tls = true;
    }
    const reader = new SocketReader(socket, () => undefined);
    const say = (text: string) => socket.write(text.endsWith("\r\n") ? text : text + "\r\n");
    if (sc.silentOn === "GREETING") return;
    say(sc.greeting ?? "220 sink.test ESMTP");
    let tx: SinkTransaction | null = null;
    const finish = (t: SinkTransaction, hash: ReturnType<typeof createHash>, kept: Buffer[]) => {
      t.sha256 = hash.digest("hex");
      t.body = t.size <= KEEP ? Buffer.concat(kept) : null;
      session.transactions.push(t);
      if (sc.silentOn !== "DATA-END") say(sc.dataEnd?.(t) ?? "250 2.0.0 Ok: queued");
    };
    let bdat: { hash: ReturnType<typeof createHash>; kept: Buffer[] } | null = null;
    const take = (t: SinkTransaction, h: ReturnType<typeof createHash>, kept: Buffer[], piece: Buffer) => {
      t.size += piece.length;
      h.update(piece);
      if (t.size <= KEEP) kept.push(Buffer.from(piece));
      if (sc.dropAfterBytes !== undefined && t.size >= sc.dropAfterBytes) socket.destroy();
    };
    for (;;) {
      const line = await reader.readLine(4096);
      if (line === null || line === "too-long") return;
      const text = line.toString("utf8");
      session.commands.push(text);
      session.pipelined.push(reader.buffered > 0);
      const verb = (/^\S+/.exec(text)?.[0] ?? "").toUpperCase();
      if (sc.silentOn === verb) continue;
      switch (verb) {
        case "EHLO": {
          if (sc.extensions === "refuse") {
            say("502 5.5.2 EHLO not here");
            break;
          }
          const ext = [...(sc.extensions ?? DEFAULT_EXT)];
          if (sc.tls && !session.tls) ext.push("STARTTLS");
          if (sc.auth && (session.tls || !sc.tls)) ext.push(`AUTH ${sc.auth.mechanisms.join(" ")}`);
          say(["sink.test greets you", ...ext].map((l, i, all) => `250${i === all.length - 1 ? " " : "-"}${l}`).join("\r\n"));
          break;
        }
        case "HELO":
          say("250 sink.test");
          break;
        case "STARTTLS":
          if (!sc.tls) {
            say("502 5.5.1 no TLS here");
            break;
          }
          say("220 2.0.0 Ready to start TLS");
          reader.detach();
          socket = await secure(socket, sc.tls);
          reader.attach(socket);
          session.tls = true;
          break;
        case "AUTH":
          say(await this.auth(text, reader, say, session));
          break;
        case "MAIL":
          tx = { mailLine: text, rcptLines: [], size: 0, sha256: "", body: null, via: "DATA" };
          say(sc.mail?.(text) ?? "250 2.1.0 Ok");
          break;
        case "RCPT": {
          const to = /<([^>]*)>/.exec(text)?.[1] ?? "";
          const r = sc.rcpt?.(to) ?? "250 2.1.5 Ok";
          if (tx && r.startsWith("2")) tx.rcptLines.push(text);
          say(r);
          break;
        }
        case "DATA": {
          if (!tx || tx.rcptLines.length === 0) {
            say("554 5.5.1 Error: no valid recipients");
            break;
          }
          say("354 End data with <CR><LF>.<CR><LF>");
          const t = tx;
          const h = createHash("sha256");
          const kept: Buffer[] = [];
          await reader.readDotData(new DotDecoder(), (pieces) => pieces.forEach((p) => take(t, h, kept, p)));
          tx = null;
          finish(t, h, kept);
          break;
        }
        case "BDAT": {
          const m = /^BDAT (\d+)( LAST)?$/i.exec(text);
          if (!m || !tx) {
            say("503 5.5.1 bad BDAT");
            break;
          }
          const t = tx;
          t.via = "BDAT";
          bdat ??= { hash: createHash("sha256"), kept: [] };
          const b = bdat;
          await reader.readExact(Number(m[1]), (p) => take(t, b.hash, b.kept, p));
          if (m[2]) {
            finish(t, b.hash, b.kept);
            tx = null;
            bdat = null;
          } else say(`250 2.0.0 ${m[1]} octets received`);
          break;
        }
        case "RSET":
          tx = null;
          bdat = null;
          say("250 2.0.0 Ok");
          break;
        case "NOOP":
          say("250 2.0.0 Ok");
          break;
        case "QUIT":
          say("221 2.0.0 Bye");
          socket.end();
          return;
        default:
          say("502 5.5.2 Error: command not recognized");
      }
    }
  }

  private async auth(line: string, reader: SocketReader, say: (t: string) => void, session: SinkSession): Promise<string> {
    const users = this.script.auth?.users;
    const [, mech, initial] = line.split(" ");
    const dec = (b: string) => Buffer.from(b, "base64").toString("utf8");
    const next = async () => ((await reader.readLine(4096)) as Buffer).toString("latin1");
    let user = "", password = "";
    if (mech?.toUpperCase() === "PLAIN") {
      const parts = dec(initial ?? (say("334 "), await next())).split("\0");
      user = parts[1] ?? "";
      password = parts[2] ?? "";
    } else if (mech?.toUpperCase() === "LOGIN") {
      say("334 VXNlcm5hbWU6");
      user = dec(await next());
      say("334 UGFzc3dvcmQ6");
      password = dec(await next());
    } else return "504 5.5.4 mechanism not supported";
    if (users?.get(user) !== password) return "535 5.7.8 Authentication credentials invalid";
    session.authUser = user;
    return "235 2.7.0 Authentication successful";
  }
}

function secure(socket: net.Socket, context: tls.SecureContext): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = new tls.TLSSocket(socket, { isServer: true, secureContext: context });
    s.once("secure", () => resolve(s));
    s.once("error", reject);
  });
}
