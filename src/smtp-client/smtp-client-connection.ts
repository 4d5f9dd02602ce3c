// The outbound SMTP client (RFC 5321) as one connection with explicit states: greeting, EHLO (HELO on
// 5xx), STARTTLS (RFC 3207), AUTH PLAIN/LOGIN (RFC 4954), then transactions with PIPELINING (RFC 2920),
// SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), CHUNKING (RFC 3030), DSN (RFC 3461) and
// the §4.5.3.2 timeouts. Trusts nothing from the peer (replies are bounded and parsed strictly); the
// message source is trusted to give CRLF content; the client dot-stuffs it while streaming (with the
// byte-stuffer POP3 uses, pop3-server/message-encoder.ts) and writes no faster than the peer reads.
import net from "node:net";
import tls from "node:tls";
import { reply, type Reply } from "../core/reply.js";
import { MessageEncoder } from "../pop3-server/message-encoder.js";
import { waitForDrain } from "../protocol/socket-drain.js";
import { ReaderClosed, ReaderTimeout, SocketReader } from "../protocol/socket-reader.js";
import { ClientError } from "./client-error.js";
import { parseExtensions, readReply, xtext } from "./reply-reader.js";
import { chooseMechanism, loginSteps, plainCommand } from "./sasl-client.js";

export interface ClientTimeouts {
  connect: number;
  greeting: number;
  ehlo: number;
  mail: number;
  rcpt: number;
  dataInit: number;
  dataBlock: number;
  dataEnd: number;
}

/** RFC 5321 §4.5.3.2 (connect: Postfix's smtp_connect_timeout; EHLO, STARTTLS, AUTH, RSET, QUIT: 5 min). */
export const DEFAULT_TIMEOUTS: ClientTimeouts = {
  connect: 30_000,
  greeting: 300_000,
  ehlo: 300_000,
  mail: 300_000,
  rcpt: 300_000,
  dataInit: 120_000,
  dataBlock: 180_000,
  dataEnd: 600_000,
};

export interface ClientOptions {
  readonly helo: string;
  /** STARTTLS if offered | must STARTTLS | implicit TLS (465) | never. */
  readonly security: "opportunistic" | "require-tls" | "tls" | "none";
  /** Default: false for "opportunistic" (MX hosts), true otherwise (a smarthost). */
  readonly verifyCertificate?: boolean;
  /** SNI and the name the certificate is checked against; default the host given to connect(). */
  readonly servername?: string;
  /** AUTH PLAIN (or LOGIN if only that is offered), only over TLS unless security is "none". */
  readonly auth?: { user: string; password: string };
  readonly timeouts?: Partial<ClientTimeouts>;
}

export interface OutboundMessage {
  /** "" = null sender. */
  readonly sender: string;
  readonly recipients: readonly string[];
  /** Octets as sent (CRLF, before dot-stuffing). */
  readonly size: number;
  readonly eightBit: boolean;
  readonly smtpUtf8: boolean;
  /** Streams the content with CRLF line ends, unstuffed; the client dot-stuffs (or uses BDAT). */
  open(): AsyncIterable<Buffer> | NodeJS.ReadableStream;
  /** RFC 3461: passed on only when the peer offers DSN. orcpt values are "addr-type;address", not yet xtext. */
  readonly dsn?: { ret?: "FULL" | "HDRS"; envid?: string; notify?: Map<string, string>; orcpt?: Map<string, string> };
}

export type RecipientResult = { to: string; kind: "sent" | "deferred" | "bounced"; reply: Reply };

export type ClientState = "ready" | "in-transaction" | "closed";

/** How a reply decides a recipient's fate: 2xx sent, 5xx bounced, anything else (4xx, odd codes) deferred. */
export function classify(r: Reply): RecipientResult["kind"] {
  if (r.code >= 200 && r.code < 300) return "sent";
  if (r.code >= 500 && r.code < 600) return "bounced";
  return "deferred";
}

type Phase = keyof ClientTimeouts;

export class SmtpClientConnection {
  private state: ClientState = "ready";
  private transactions = 0;
  private ext: Map<string, string> = new Map();
  private tlsInfo: { version: string; cipher: string } | null = null;

  private constructor(
    private socket: net.Socket,
    private readonly reader: SocketReader,
    private readonly host: string,
    private readonly opts: ClientOptions,
    private readonly timeouts: ClientTimeouts,
  ) {}

  get extensions(): ReadonlyMap<string, string> {
    return this.ext;
  }
  get tls(): { version: string; cipher: string } | null {
    return this.tlsInfo;
  }
  get currentState(): ClientState {
    return this.state;
  }

  /** Connects to address:port, reads the greeting, says EHLO (HELO on 5xx), upgrades to TLS, authenticates. */
  static async connect(host: string, address: string, port: number, opts: ClientOptions): Promise<SmtpClientConnection> {
    const timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    let socket: net.Socket = await openTcp(address, port, timeouts.connect, host);
    socket.setNoDelay(true); // pipelined batches and BDAT headers should not wait for delayed ACKs
    try {
      if (opts.security === "tls") socket = await handshake(socket, host, opts, timeouts.connect);
    } catch (err) {
      socket.destroy();
      throw err;
    }
    const conn = new SmtpClientConnection(socket, new SocketReader(socket, () => undefined), host, opts, timeouts);
    // A peer that hangs up while the connection waits between messages makes it unusable, not a failed send.
    socket.once("close", () => {
      if (conn.state === "ready") conn.state = "closed";
    });
    if (socket instanceof tls.TLSSocket) conn.tlsInfo = describe(socket);
    try {
      await conn.open();
    } catch (err) {
      conn.destroy();
      throw wrap(err, host);
    }
    return conn;
  }

  private async open(): Promise<void> {
    const greeting = await this.read("greeting");
    if (greeting.code !== 220) {
      await this.quitQuietly(); // RFC 5321 §3.1: a 554 greeting still expects QUIT
      throw new ClientError("greeting", `${this.host} greeted with ${greeting.code}`, { temporary: greeting.code < 500, reply: greeting });
    }
    await this.hello();
    const wantTls = this.opts.security === "opportunistic" || this.opts.security === "require-tls";
    if (wantTls && !this.tlsInfo) {
      if (this.ext.has("STARTTLS")) await this.startTls();
      else if (this.opts.security === "require-tls") {
        await this.quitQuietly();
        throw new ClientError("tls", `TLS is required, but ${this.host} does not offer STARTTLS`, {
          temporary: true,
          reply: reply(451, "4.7.4", `TLS is required, but ${this.host} does not offer STARTTLS`),
        });
      }
    }
    if (this.opts.auth) await this.authenticate(this.opts.auth);
  }

  private async hello(): Promise<void> {
    const ehlo = await this.command(`EHLO ${this.opts.helo}`, "ehlo");
    if (ehlo.code === 250) {
      this.ext = parseExtensions(ehlo);
      return;
    }
    if (ehlo.code >= 500) {
      const helo = await this.command(`HELO ${this.opts.helo}`, "ehlo");
      if (helo.code === 250) {
        this.ext = new Map();
        return;
      }
      throw new ClientError("ehlo", `${this.host} refused HELO`, { temporary: helo.code < 500, reply: helo });
    }
    throw new ClientError("ehlo", `${this.host} refused EHLO`, { temporary: true, reply: ehlo });
  }

  private async startTls(): Promise<void> {
    const r = await this.command("STARTTLS", "ehlo");
    if (r.code !== 220) {
      if (this.opts.security === "require-tls") {
        throw new ClientError("tls", `${this.host} refused STARTTLS`, { temporary: true, reply: r });
      }
      return; // opportunistic: carry on in plaintext, as Postfix's "may" level does
    }
    // Anything the server sent after its 220 is not to be trusted (RFC 3207 §4.2): the reader drops it.
    this.reader.detach();
    const secure = await handshake(this.socket, this.host, this.opts, this.timeouts.ehlo);
    this.socket = secure;
    this.reader.attach(secure);
    this.tlsInfo = describe(secure);
    await this.hello(); // RFC 3207 §4.2: forget what was learnt before TLS
  }

  private async authenticate(auth: { user: string; password: string }): Promise<void> {
    if (!this.tlsInfo && this.opts.security !== "none") {
      throw new ClientError("auth", `will not send a password to ${this.host} without TLS`, { temporary: true, reply: reply(451, "4.7.0", `will not authenticate to ${this.host} without TLS`) });
    }
    const mechanism = chooseMechanism(this.ext.get("AUTH") ?? "");
    if (!mechanism) {
      throw new ClientError("auth", `${this.host} offers no AUTH PLAIN or LOGIN`, { temporary: true, reply: reply(451, "4.7.0", `${this.host} offers no usable AUTH mechanism`) });
    }
    let r: Reply;
    if (mechanism === "PLAIN") r = await this.command(plainCommand(auth.user, auth.password), "ehlo");
    else {
      const [cmd, user, password] = loginSteps(auth.user, auth.password);
      r = await this.command(cmd, "ehlo");
      if (r.code === 334) r = await this.command(user, "ehlo");
      if (r.code === 334) r = await this.command(password, "ehlo");
    }
    // Like Postfix's smtp_sasl_auth_soft_bounce: a refused login is a configuration matter, so the mail waits.
    if (r.code !== 235) throw new ClientError("auth", `${this.host} refused AUTH ${mechanism}`, { temporary: true, reply: r });
  }

  /**
   * One transaction for all recipients. Results per recipient: from its RCPT reply, or for the accepted
   * ones from the end-of-data reply; a lost connection or a timeout defers every unfinished recipient
   * (the connection is then closed). `transaction` is the MAIL reply when MAIL failed, else the final one.
   */
  async send(msg: OutboundMessage): Promise<{ results: RecipientResult[]; transaction?: Reply }> {
    if (this.state !== "ready") throw new ClientError("state", `connection to ${this.host} is ${this.state}`, { temporary: true });
    const refused = this.precheck(msg);
    if (refused) return { results: msg.recipients.map((to) => ({ to, kind: "bounced", reply: refused })), transaction: refused };
    const done = new Map<string, RecipientResult>();
    // Addresses come from our own spool, but a CR or LF in one would write a command of its own.
    for (const to of msg.recipients) {
      if (!safeParameter(to, msg.dsn?.notify?.get(to), msg.dsn?.orcpt?.get(to))) done.set(to, { to, kind: "bounced", reply: reply(553, "5.1.3", `Cannot send to ${JSON.stringify(to)}: not a valid address or DSN parameter`) });
    }
    const recipients = msg.recipients.filter((to) => !done.has(to));
    if (recipients.length === 0) return { results: msg.recipients.map((to) => done.get(to)!) };
    this.state = "in-transaction";
    try {
      if (this.transactions++ > 0) {
        const r = await this.command("RSET", "ehlo");
        if (r.code !== 250) throw new ClientError("protocol", `${this.host} refused RSET`, { temporary: true, reply: r });
      }
      const out = await this.transaction(msg, recipients, done);
      this.state = "ready";
      return out;
    } catch (err) {
      const e = wrap(err, this.host);
      this.destroy();
      const why = e.reply ?? reply(451, "4.4.2", e.message);
      const results = msg.recipients.map((to) => done.get(to) ?? { to, kind: "deferred" as const, reply: why });
      return { results, transaction: why };
    }
  }

  /** What rules a message out before a byte is sent: a bad sender; too big, 8-bit or UTF-8 the peer cannot take. */
  private precheck(msg: OutboundMessage): Reply | null {
    if (UNSAFE.test(msg.sender) || (msg.dsn?.ret !== undefined && msg.dsn.ret !== "FULL" && msg.dsn.ret !== "HDRS")) {
      return reply(553, "5.1.7", `Cannot send from ${JSON.stringify(msg.sender)}: not a valid address`);
    }
    const limit = Number(this.ext.get("SIZE") ?? "0");
    if (this.ext.has("SIZE") && Number.isSafeInteger(limit) && limit > 0 && msg.size > limit) {
      return reply(552, "5.3.4", `message too big for ${this.host} (${msg.size} octets, it takes at most ${limit})`);
    }
    if (msg.eightBit && !this.ext.has("8BITMIME")) {
      return reply(554, "5.6.3", `the message has 8-bit content and ${this.host} does not support 8BITMIME`);
    }
    if (msg.smtpUtf8 && !this.ext.has("SMTPUTF8")) {
      return reply(553, "5.6.7", `the message needs SMTPUTF8 (non-ASCII addresses or headers) and ${this.host} does not support it`);
    }
    return null;
  }

  private mailCommand(msg: OutboundMessage): string {
    let cmd = `MAIL FROM:<${msg.sender}>`;
    if (this.ext.has("SIZE")) cmd += ` SIZE=${msg.size}`;
    if (msg.eightBit) cmd += " BODY=8BITMIME";
    if (msg.smtpUtf8) cmd += " SMTPUTF8";
    if (this.ext.has("DSN") && msg.dsn) {
      if (msg.dsn.ret) cmd += ` RET=${msg.dsn.ret}`;
      if (msg.dsn.envid !== undefined) cmd += ` ENVID=${xtext(msg.dsn.envid)}`;
    }
    return cmd;
  }

  private rcptCommand(msg: OutboundMessage, to: string): string {
    let cmd = `RCPT TO:<${to}>`;
    if (this.ext.has("DSN") && msg.dsn) {
      const notify = msg.dsn.notify?.get(to);
      if (notify) cmd += ` NOTIFY=${notify}`;
      const orcpt = msg.dsn.orcpt?.get(to);
      const semi = orcpt?.indexOf(";") ?? -1;
      if (orcpt && semi > 0) cmd += ` ORCPT=${orcpt.slice(0, semi)};${xtext(orcpt.slice(semi + 1))}`;
    }
    return cmd;
  }

  private async transaction(msg: OutboundMessage, recipients: readonly string[], done: Map<string, RecipientResult>): Promise<{ results: RecipientResult[]; transaction?: Reply }> {
    const pipelining = this.ext.has("PIPELINING");
    const chunking = this.ext.has("CHUNKING");
    const mail = this.mailCommand(msg);
    const rcpts = recipients.map((to) => this.rcptCommand(msg, to));
    const accepted: string[] = [];
    let mailReply: Reply;
    let dataReply: Reply | null = null;
    if (pipelining) {
      // RFC 2920 §3.1: MAIL, the RCPTs and DATA in one write; the replies come back in order.
      this.write([mail, ...rcpts, ...(chunking ? [] : ["DATA"])].map((l) => l + "\r\n").join(""));
      mailReply = await this.read("mail");
      for (const to of recipients) this.settleRcpt(to, await this.read("rcpt"), mailReply, accepted, done);
      if (!chunking) dataReply = await this.read("dataInit");
    } else {
      mailReply = await this.command(mail, "mail");
      for (const to of recipients) {
        if (classify(mailReply) !== "sent") done.set(to, { to, kind: classify(mailReply), reply: mailReply });
        else this.settleRcpt(to, await this.command(this.rcptCommand(msg, to), "rcpt"), mailReply, accepted, done);
      }
    }
    const results = () => msg.recipients.map((to) => done.get(to)!);
    if (classify(mailReply) !== "sent") {
      if (dataReply?.code === 354) await this.endEmptyData();
      return { results: results(), transaction: mailReply };
    }
    if (accepted.length === 0) {
      // RFC 2920 §3.1: a server may still answer 354 to a pipelined DATA; send an empty message's end.
      if (dataReply?.code === 354) await this.endEmptyData();
      return { results: results() };
    }
    let final: Reply;
    if (chunking) final = await this.sendChunks(msg);
    else {
      dataReply ??= await this.command("DATA", "dataInit");
      if (dataReply.code !== 354) {
        for (const to of accepted) done.set(to, { to, kind: classify(dataReply) === "bounced" ? "bounced" : "deferred", reply: dataReply });
        return { results: results(), transaction: dataReply };
      }
      final = await this.sendData(msg);
    }
    const kind = classify(final);
    for (const to of accepted) done.set(to, { to, kind, reply: final });
    return { results: results(), transaction: final };
  }

  private settleRcpt(to: string, r: Reply, mailReply: Reply, accepted: string[], done: Map<string, RecipientResult>): void {
    // After a failed MAIL every RCPT fails too (503); the MAIL reply is the one that explains it.
    if (classify(mailReply) !== "sent") done.set(to, { to, kind: classify(mailReply), reply: mailReply });
    else if (classify(r) === "sent") accepted.push(to);
    else done.set(to, { to, kind: classify(r), reply: r });
  }

  private async endEmptyData(): Promise<void> {
    this.write(".\r\n");
    await this.read("dataEnd");
  }

  /** DATA content, dot-stuffed while it streams, written only as fast as the peer reads it. */
  private async sendData(msg: OutboundMessage): Promise<Reply> {
    const encoder = new MessageEncoder();
    for await (const chunk of source(msg)) {
      const out = encoder.feed(chunk);
      if (out.length) await this.writeData(out);
    }
    await this.writeData(encoder.end());
    return this.read("dataEnd");
  }

  /** RFC 3030: each piece of the source as one BDAT chunk (no stuffing), then "BDAT 0 LAST". */
  private async sendChunks(msg: OutboundMessage): Promise<Reply> {
    for await (const chunk of source(msg)) {
      if (chunk.length === 0) continue;
      await this.writeData(Buffer.from(`BDAT ${chunk.length}\r\n`), chunk);
      const r = await this.read("dataBlock");
      if (r.code !== 250) return r;
    }
    this.write("BDAT 0 LAST\r\n");
    return this.read("dataEnd");
  }

  /** Writes the pieces as one packet (no copy), then waits while the socket holds more than its high-water mark. */
  private async writeData(...pieces: Buffer[]): Promise<void> {
    this.socket.setTimeout(this.timeouts.dataBlock);
    this.socket.cork();
    let room = true;
    for (const p of pieces) room = this.socket.write(p);
    this.socket.uncork();
    if (!room) await waitForDrain(this.socket);
  }

  /** Says QUIT and closes; never throws (the peer may already be gone). */
  async quit(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "closed";
    try {
      await this.command("QUIT", "ehlo");
    } catch {
      // the peer left first: nothing to do
    }
    this.socket.end();
    this.socket.destroy();
  }

  destroy(): void {
    this.state = "closed";
    this.socket.destroy();
  }

  private async quitQuietly(): Promise<void> {
    const previous = this.timeouts.ehlo;
    this.timeouts.ehlo = Math.min(previous, 5_000);
    await this.quit();
    this.timeouts.ehlo = previous;
  }

  private write(text: string): void {
    this.socket.write(text);
  }

  /** The client logs nothing itself, so AUTH lines never reach a log. */
  private async command(line: string, phase: Phase): Promise<Reply> {
    this.write(line + "\r\n");
    return this.read(phase);
  }

  private async read(phase: Phase): Promise<Reply> {
    this.reader.setTimeout(this.timeouts[phase]);
    try {
      return await readReply(this.reader);
    } catch (err) {
      if (err instanceof ReaderTimeout) throw new ClientError("timeout", `timed out waiting for ${this.host} (${phase})`, { temporary: true, reply: reply(451, "4.4.2", `timed out waiting for ${this.host} (${phase})`) });
      throw err;
    } finally {
      // No idle timer between messages: a connection waiting for the next send must not time out itself.
      this.socket.setTimeout(0);
    }
  }
}

/** Control characters (CR, LF) and angle brackets never appear in a path we send (RFC 5321 §4.1.2). */
const UNSAFE = /[\x00-\x1f\x7f<>]/;

function safeParameter(to: string, notify: string | undefined, orcpt: string | undefined): boolean {
  if (UNSAFE.test(to)) return false;
  if (notify !== undefined && !/^(?:NEVER|(?:SUCCESS|FAILURE|DELAY)(?:,(?:SUCCESS|FAILURE|DELAY))*)$/i.test(notify)) return false;
  return orcpt === undefined || /^[A-Za-z0-9-]+;[^\x00-\x1f\x7f]*$/.test(orcpt);
}

function source(msg: OutboundMessage): AsyncIterable<Buffer> {
  const s = msg.open() as AsyncIterable<Buffer | string>;
  return (async function* () {
    const it = s[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<Buffer | string>;
      try {
        next = await it.next();
      } catch (err) {
        // Our own disk failed, not the peer: the terminator is never sent, so nothing is delivered half.
        throw new ClientError("source", `cannot read the message: ${err instanceof Error ? err.message : String(err)}`, { temporary: true, reply: reply(451, "4.3.0", "local error reading the message"), cause: err });
      }
      if (next.done) return;
      yield typeof next.value === "string" ? Buffer.from(next.value, "utf8") : next.value;
    }
  })();
}

function describe(socket: tls.TLSSocket): { version: string; cipher: string } {
  return { version: socket.getProtocol() ?? "unknown", cipher: socket.getCipher().name };
}

/** Any failure as a ClientError: a closed socket or a timeout is temporary (4.4.2), as RFC 5321 §4.5.4.1 advises retrying. */
function wrap(err: unknown, host: string): ClientError {
  if (err instanceof ClientError) return err;
  if (err instanceof ReaderClosed) return new ClientError("closed", `connection to ${host} lost`, { temporary: true, reply: reply(451, "4.4.2", `connection to ${host} lost`), cause: err });
  if (err instanceof ReaderTimeout) return new ClientError("timeout", `timed out talking to ${host}`, { temporary: true, reply: reply(451, "4.4.2", `timed out talking to ${host}`), cause: err });
  const text = err instanceof Error ? err.message : String(err);
  return new ClientError("closed", `connection to ${host} failed: ${text}`, { temporary: true, reply: reply(451, "4.4.2", `connection to ${host} failed: ${text}`), cause: err });
}

function openTcp(address: string, port: number, ms: number, host: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ClientError("connect", `cannot connect to ${host}[${address}]:${port}: timed out`, { temporary: true, reply: reply(451, "4.4.1", `connection to ${host}[${address}]:${port} timed out`) }));
    }, ms);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      socket.on("error", () => undefined); // the reader sees the close that follows
      resolve(socket);
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(new ClientError("connect", `cannot connect to ${host}[${address}]:${port}: ${err.message}`, { temporary: true, reply: reply(451, "4.4.1", `cannot connect to ${host}[${address}]:${port}: ${err.message}`), cause: err }));
    });
  });
}

/** Client-side handshake on an open socket; TLS 1.2 at least; verification as the options say. */
function handshake(socket: net.Socket, host: string, opts: ClientOptions, ms: number): Promise<tls.TLSSocket> {
  const verify = opts.verifyCertificate ?? opts.security !== "opportunistic";
  return new Promise((resolve, reject) => {
    const name = opts.servername ?? host;
    // RFC 6066 §3: SNI never carries an IP address; the certificate is then checked against the address.
    const secure = tls.connect({ socket, ...(net.isIP(name) ? { host: name } : { servername: name }), rejectUnauthorized: verify, minVersion: "TLSv1.2" });
    const fail = (why: string, cause?: unknown) => {
      clearTimeout(timer);
      secure.destroy();
      reject(new ClientError("tls", `TLS with ${host} failed: ${why}`, { temporary: true, reply: reply(451, "4.7.5", `TLS with ${host} failed: ${why}`), cause }));
    };
    const timer = setTimeout(() => fail("handshake timed out"), ms);
    secure.once("secureConnect", () => {
      clearTimeout(timer);
      secure.removeAllListeners("error");
      secure.on("error", () => undefined);
      resolve(secure);
    });
    secure.once("error", (err) => fail(err.message, err));
  });
}
