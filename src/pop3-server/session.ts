// One POP3 connection (RFC 1939; RFC 2449 CAPA and response codes; RFC 3206 [AUTH]/[SYS]; RFC 5034 AUTH
// PLAIN; RFC 2595 STLS): reads command lines, dispatches them through the command table, and after login
// owns the locked Maildrop. Trusts nothing from the client; accounts and mailboxes come in through interfaces;
// passwords in clear only where pop3.plaintext_login allows (over TLS always).
// Bounded per connection: no command is read while replies wait unread, LIST/UIDL stream with
// backpressure, and every command counts against the session's command allowance.
import type { LoginResult } from "../auth/authenticator.js";
import type { Logger } from "../core/log.js";
import type { Connection } from "../protocol/connection.js";
import { ReplyQueue } from "../protocol/reply-queue.js";
import { ReaderClosed, ReaderInterrupted, ReaderTimeout, SocketReader } from "../protocol/socket-reader.js";
import { upgradeToTls } from "../protocol/upgrade-to-tls.js";
import { hasControlChars, printable } from "../protocol/wire-text.js";
import type { ApopTimestamps } from "../auth/apop.js";
import { COMMANDS, capabilities, plaintextLoginAllowed, refusal, splitArgs, type Pop3State } from "./commands.js";
import type { Maildrop, MaildropMessage, UpdateResult } from "./maildrop.js";
import type { MaildropLock, MaildropLocks } from "./maildrop-locks.js";
import { MessageEncoder } from "./message-encoder.js";
import { streamMessage } from "./message-stream.js";
import { decodePlain } from "../auth/sasl-plain.js";

export interface Pop3SessionOptions {
  readonly hostname: string;
  readonly idleTimeoutMs: number;
  readonly maxAuthFailures: number;
  readonly authFailureDelayMs: number;
  /**
   * Commands a session may send besides COMMANDS_PER_MESSAGE for each message of its maildrop
   * (limits.max_junk_commands); then -ERR and close. Default 100.
   */
  readonly maxCommands?: number;
  /** pop3.plaintext_login: where USER/PASS and AUTH PLAIN work without TLS (default loopback). */
  readonly plaintextLogin?: "loopback" | "always" | "never";
}

/** A full download is LIST, UIDL, RETR (or TOP) and DELE per message; twice that is generous. */
const COMMANDS_PER_MESSAGE = 8;

/** Logins go through the shared authenticator (auth/authenticator.ts): throttle, then hash worker. */
export interface Pop3Accounts {
  password(peer: string, user: string, password: string): Promise<LoginResult>;
  apop(peer: string, user: string, timestamp: string, digest: string): LoginResult;
}

export interface Pop3SessionDeps {
  readonly options: Pop3SessionOptions;
  readonly accounts: Pop3Accounts;
  readonly locks: MaildropLocks;
  readonly timestamps: ApopTimestamps;
  /** Takes the snapshot of a user's maildrop; called with the lock held. */
  readonly openMaildrop: (address: string) => Promise<Maildrop>;
  readonly log: Logger;
}

/** RFC 2449 §4: a command line is at most 255 octets including the CRLF. */
export const MAX_COMMAND_LINE = 253;
/** A SASL response line (RFC 5034 §4 lifts the command limit for it); PLAIN needs far less. */
const MAX_SASL_LINE = 2048;

type EndReason = "quit" | "disconnected" | "timeout" | "shutdown" | "shutdown-cut" | "auth-failures" | "too-many-commands" | "tls-failed" | "error";

/** What a login holds until the session ends: the locked maildrop and what was done with it. */
interface Login {
  readonly user: string;
  readonly maildrop: Maildrop;
  readonly lock: MaildropLock;
  retrieved: number;
}

export class Pop3Session {
  private readonly reader: SocketReader;
  private readonly peer: string;
  private readonly timestamp: string;
  private readonly replies: ReplyQueue;
  private state: Pop3State = "authorization";
  private givenUser: string | null = null;
  private login: Login | null = null;
  private updateResult: UpdateResult | null = null;
  private failures = 0;
  private commands = 0;
  /** The user a good login was for when the maildrop was locked ([IN-USE]), for the log. */
  private lockedOut: string | null = null;
  private closed = false;
  private endReason: EndReason = "disconnected";
  private shuttingDown = false;
  private readingCommand = false;
  /** True while a multi-line response streams: nothing else may be written into it. */
  private streaming = false;

  constructor(
    private readonly conn: Connection,
    private readonly deps: Pop3SessionDeps,
  ) {
    this.peer = conn.info.peer;
    this.replies = new ReplyQueue(conn.socket);
    this.reader = new SocketReader(conn.socket, () => this.replies.flush());
    this.timestamp = deps.timestamps.next();
  }

  private get opts(): Pop3SessionOptions {
    return this.deps.options;
  }

  /** Server shutdown: a session waiting for a command is closed now, a busy one after its command. */
  shutdown(): void {
    this.shuttingDown = true;
    if (this.readingCommand) this.reader.interrupt("shutdown");
  }

  /** The grace period is over: the listener cuts the connection now. */
  cut(): void {
    this.endReason = "shutdown-cut";
  }

  async run(): Promise<void> {
    this.ok(`Petrel POP3 server ready ${this.timestamp}`);
    try {
      while (!this.closed) {
        if (this.shuttingDown) throw new ReaderInterrupted("shutdown");
        this.reader.setTimeout(this.opts.idleTimeoutMs);
        // Backpressure: no next command while the peer leaves our replies unread.
        await this.replies.ready();
        this.readingCommand = true;
        const line = await this.reader.readLine(MAX_COMMAND_LINE);
        this.readingCommand = false;
        if (line === null) break;
        if (this.overCommandLimit()) break;
        if (line === "too-long") this.err("line too long: at most 255 octets including CRLF");
        else await this.dispatch(line.toString("utf8"));
      }
    } catch (err) {
      this.fail(err);
    } finally {
      // Every way out lands here: QUIT, drop, timeout, shutdown, or a crash of the session.
      this.login?.lock.release();
      this.logEnd();
      this.close();
    }
  }

  /**
   * Every command line counts (errors too): a session gets maxCommands plus COMMANDS_PER_MESSAGE per
   * message of its maildrop, so a CAPA or NOOP loop ends while a real download never comes close.
   */
  private overCommandLimit(): boolean {
    const allowance = (this.opts.maxCommands ?? 100) + COMMANDS_PER_MESSAGE * (this.login?.maildrop.count ?? 0);
    if (++this.commands <= allowance) return false;
    this.deps.log.info({ peer: this.peer, user: this.login?.user ?? null, commands: this.commands - 1 }, "pop3 command limit reached");
    this.err("too many commands in this session, closing connection");
    this.endReason = "too-many-commands";
    return true;
  }

  private async dispatch(line: string): Promise<void> {
    if (hasControlChars(line)) return this.err("bad characters in command");
    const sp = line.indexOf(" ");
    const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
    const row = COMMANDS.get(verb);
    if (!row) return this.err(verb === "" ? "empty command" : `unknown command ${printable(verb, 20)}`);
    if (!row.allowedIn.includes(this.state)) return this.err(refusal(row, this.state));
    if (row.plaintextLogin && !plaintextLoginAllowed(this.conn, this.opts)) return this.refusePlaintext(verb);
    const args = splitArgs(row, sp < 0 ? "" : line.slice(sp + 1));
    if (!args) return this.err(`bad arguments, usage: ${row.usage}`);
    await row.run(this, args);
  }

  // ---- AUTHORIZATION ----

  /**
   * A password would cross the connection in clear where pop3.plaintext_login does not allow it.
   * RFC 3206 §4: [AUTH] covers "an attempt to authenticate in violation of policy". Nothing was
   * checked, so it is no login failure.
   */
  private refusePlaintext(verb: string): void {
    this.deps.log.info({ peer: this.peer, verb }, "pop3 plaintext login refused");
    this.err(
      this.conn.tlsAvailable ? "[AUTH] TLS required: use STLS (or port 995) before logging in" : "[AUTH] login without TLS is not allowed on this connection",
    );
  }

  /**
   * STLS (RFC 2595 §4): "+OK", then the handshake on the same socket. Whatever the client pipelined
   * after STLS is thrown away unread (CVE-2011-0411); the session stays in AUTHORIZATION and keeps its
   * APOP timestamp. A failed handshake is logged and ends the connection.
   */
  async stls(): Promise<void> {
    if (this.conn.secure) return this.err("Command not permitted when TLS active");
    if (!this.conn.tlsAvailable) return this.err("TLS is not available on this server");
    this.ok("Begin TLS negotiation");
    const upgrade = await upgradeToTls(this.conn, this.reader, this.replies, this.deps.log);
    if (upgrade.kind === "failed") {
      this.endReason = "tls-failed";
      this.closed = true;
    }
  }

  user(name: string): void {
    // Same answer for every name, so USER does not tell which users exist.
    this.givenUser = name;
    this.state = "user-given";
    this.ok("send PASS");
  }

  async pass(password: string): Promise<void> {
    const user = this.givenUser!;
    this.givenUser = null;
    this.state = "authorization";
    const started = Date.now();
    await this.loggedIn(await this.deps.accounts.password(this.peer, user, password), "USER/PASS", started);
  }

  async apop(name: string, digest: string): Promise<void> {
    this.givenUser = null;
    this.state = "authorization";
    await this.loggedIn(this.deps.accounts.apop(this.peer, name, this.timestamp, digest), "APOP", Date.now());
  }

  /** RFC 5034 AUTH; PLAIN only, so clients that prefer SASL (curl) do not fall back on APOP. */
  async auth(mechanism: string, initial: string | undefined): Promise<void> {
    this.givenUser = null;
    this.state = "authorization";
    if (mechanism.toUpperCase() !== "PLAIN") return this.err("unsupported authentication mechanism, use PLAIN");
    let response = initial;
    if (response === undefined) {
      this.replies.push("+ \r\n");
      this.reader.setTimeout(this.opts.idleTimeoutMs);
      this.readingCommand = true;
      const line = await this.reader.readLine(MAX_SASL_LINE);
      this.readingCommand = false;
      if (line === null) throw new ReaderClosed();
      response = line === "too-long" ? "" : line.toString("latin1").trim();
    } else if (response === "=") {
      response = ""; // RFC 5034 §4: "=" is an empty initial response
    }
    if (response === "*") return this.err("authentication cancelled");
    const credentials = decodePlain(response);
    const started = Date.now();
    if (!credentials) return this.authFailed({ kind: "failed", user: "(malformed)" }, "AUTH PLAIN", started);
    await this.loggedIn(await this.deps.accounts.password(this.peer, credentials.user, credentials.password), "AUTH PLAIN", started);
  }

  /** started: when the check began; a failure is answered authFailureDelayMs after it (as SMTP AUTH). */
  private async loggedIn(r: LoginResult, method: string, started: number): Promise<void> {
    if (r.kind === "ok") return this.enter(r.user);
    await this.authFailed(r, method, started);
  }

  /**
   * A refused login. RFC 3206: [AUTH] says the credentials are wrong; a throttled or busy login was
   * never checked, so it gets [SYS/TEMP] ("try again later"): a client must not ask for a new password.
   */
  private async authFailed(r: Exclude<LoginResult, { kind: "ok" }>, method: string, started: number): Promise<void> {
    const { user } = r;
    this.failures++;
    const refused = r.kind === "throttled" ? `throttled-${r.scope}` : r.kind;
    this.deps.log.warn({ peer: this.peer, user, method, result: refused, failures: this.failures }, "pop3 authentication failed");
    // Measured from the start of the check, so the reply time does not depend on the account.
    const delay = this.opts.authFailureDelayMs - (Date.now() - started);
    if (delay > 0) {
      this.replies.flush();
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
    const text =
      r.kind === "failed" ? "[AUTH] invalid user name or password"
      : r.kind === "busy" ? "[SYS/TEMP] server busy, try again later"
      : "[SYS/TEMP] too many failed logins, try again later";
    if (this.failures >= this.opts.maxAuthFailures) {
      this.err(`${text}; too many failures, closing connection`);
      this.endReason = "auth-failures";
      this.closed = true;
      return;
    }
    this.err(text);
  }

  /** A good password: lock the maildrop (RFC 1939 §8), take the snapshot, enter TRANSACTION. */
  private async enter(user: string): Promise<void> {
    const lock = this.deps.locks.tryAcquire(user);
    if (!lock) {
      this.lockedOut = user;
      this.deps.log.info({ peer: this.peer, user }, "pop3 maildrop in use");
      return this.err("[IN-USE] maildrop is locked by another session, try again later");
    }
    let maildrop: Maildrop;
    try {
      maildrop = await this.deps.openMaildrop(user);
    } catch (err) {
      lock.release();
      this.deps.log.error({ err, user }, "cannot open maildrop");
      return this.err("[SYS/TEMP] cannot open maildrop, try again later");
    }
    this.login = { user, maildrop, lock, retrieved: 0 };
    this.conn.info.auth = user;
    this.state = "transaction";
    const { count, size } = maildrop.stat();
    this.ok(`${user} has ${messages(count)} (${size} octets)`);
  }

  capa(): void {
    this.ok("Capability list follows");
    this.replies.push(capabilities(this.conn, this.opts).map((c) => `${c}\r\n`).join("") + ".\r\n");
  }

  async quit(): Promise<void> {
    this.closed = true;
    this.endReason = "quit";
    const login = this.login;
    if (!login) return this.ok("Petrel POP3 server signing off");
    this.state = "update";
    this.updateResult = await login.maildrop.update();
    login.lock.release();
    const left = this.updateResult.left === 0 ? "maildrop empty" : `${messages(this.updateResult.left)} left`;
    if (this.updateResult.failed > 0) this.err(`[SYS/TEMP] ${this.updateResult.failed} deleted messages could not be removed (${left})`);
    else this.ok(`Petrel POP3 server signing off (${left})`);
  }

  // ---- TRANSACTION ----

  stat(): void {
    const { count, size } = this.maildrop.stat();
    this.ok(`${count} ${size}`);
  }

  async list(n: string | undefined): Promise<void> {
    if (n !== undefined) {
      const m = this.message(n);
      if (m) this.ok(`${m.number} ${m.size}`);
      return;
    }
    const { count, size } = this.maildrop.stat();
    await this.multiLine(`${messages(count)} (${size} octets)`, this.scanLines((m) => `${m.number} ${m.size}`));
  }

  async uidl(n: string | undefined): Promise<void> {
    if (n !== undefined) {
      const m = this.message(n);
      if (m) this.ok(`${m.number} ${m.uid}`);
      return;
    }
    await this.multiLine("unique-id listing follows", this.scanLines((m) => `${m.number} ${m.uid}`));
  }

  /** One line per message not marked deleted, made as the listing streams (never one big string). */
  private *scanLines(format: (m: MaildropMessage) => string): Generator<string> {
    for (const m of this.maildrop.messages) yield format(m);
  }

  async retr(n: string): Promise<void> {
    const m = this.message(n);
    if (!m) return;
    if (await this.sendMessage(m, null, `${m.size} octets`)) this.login!.retrieved++;
  }

  async top(n: string, lines: string): Promise<void> {
    const m = this.message(n);
    if (!m) return;
    if (!/^\d{1,15}$/.test(lines)) return this.err("invalid number of lines: expected a number 0 or more");
    await this.sendMessage(m, Number(lines), "top of message follows");
  }

  dele(n: string): void {
    const m = this.message(n);
    if (!m) return;
    this.maildrop.markDeleted(m);
    this.ok(`message ${m.number} deleted`);
  }

  rset(): void {
    this.maildrop.reset();
    const { count, size } = this.maildrop.stat();
    this.ok(`maildrop has ${messages(count)} (${size} octets)`);
  }

  noop(): void {
    this.ok("");
  }

  // ---- helpers ----

  private get maildrop(): Maildrop {
    if (!this.login) throw new TypeError("no maildrop outside TRANSACTION");
    return this.login.maildrop;
  }

  /** The message a number names, or null after sending the reason it cannot be used. */
  private message(text: string): MaildropMessage | null {
    if (!/^\d{1,10}$/.test(text)) {
      this.err(`invalid message number ${printable(text, 20)}: expected a number from 1`);
      return null;
    }
    const found = this.maildrop.get(Number(text));
    if (found.kind !== "ok") {
      this.err(found.text);
      return null;
    }
    return found.message;
  }

  /** Streams a message (RETR) or its top (TOP) with backpressure; false if it could not be read. */
  private async sendMessage(m: MaildropMessage, bodyLines: number | null, status: string): Promise<boolean> {
    let fh;
    try {
      fh = await this.maildrop.openMessage(m);
    } catch (err) {
      this.deps.log.error({ err, user: this.login?.user, file: m.path }, "cannot open message");
      this.err(`[SYS/TEMP] cannot read message ${m.number}, try again later`);
      return false;
    }
    if (!fh) {
      this.err(`message ${m.number} was removed from the mailbox by another program`);
      return false;
    }
    try {
      this.ok(status);
      this.replies.flush();
      this.streaming = true;
      await streamMessage(this.conn.socket, fh, new MessageEncoder(bodyLines));
      this.streaming = false;
      return true;
    } finally {
      await fh.close();
    }
  }

  private fail(err: unknown): void {
    if (err instanceof ReaderClosed) {
      this.endReason = "disconnected";
      return;
    }
    if (this.streaming) {
      // Half a message is out: no reply can follow it; the client sees the connection close.
      this.endReason = err instanceof ReaderTimeout ? "timeout" : "error";
      if (this.endReason === "error") this.deps.log.error({ err }, "pop3 session failed while sending a message");
      this.replies.discard();
      this.conn.socket.destroy();
      return;
    }
    if (err instanceof ReaderTimeout) {
      // RFC 1939 §3: the autologout timer ends the session without entering UPDATE.
      this.endReason = "timeout";
      this.err("[SYS/TEMP] autologout: idle for too long, closing connection");
    } else if (err instanceof ReaderInterrupted) {
      this.endReason = "shutdown";
      this.err("[SYS/TEMP] server shutting down, closing connection");
    } else {
      this.endReason = "error";
      this.deps.log.error({ err }, "pop3 session failed");
      this.err("[SYS/TEMP] internal error, closing connection");
    }
  }

  private ok(text: string): void {
    this.replies.push(text ? `+OK ${text}\r\n` : "+OK\r\n");
  }

  private err(text: string): void {
    this.replies.push(`-ERR ${text}\r\n`);
  }

  /** A multi-line response (RFC 1939 §3), written with backpressure; none of these lines can start with ".". */
  private async multiLine(status: string, lines: Iterable<string>): Promise<void> {
    this.ok(status);
    await this.replies.pushAll(withEnds(lines));
    this.replies.push(".\r\n");
  }

  private close(): void {
    this.closed = true;
    this.replies.end();
  }

  /** One line per session; never the password. */
  private logEnd(): void {
    this.deps.log.info(
      {
        peer: this.peer,
        user: this.login?.user ?? this.lockedOut,
        retrieved: this.login?.retrieved ?? 0,
        deleted: this.updateResult?.deleted ?? 0,
        delete_failed: this.updateResult?.failed ?? 0,
        auth_failures: this.failures,
        tls: this.conn.info.tls?.version ?? null,
        end: this.endReason,
      },
      "pop3 session",
    );
  }
}

function* withEnds(lines: Iterable<string>): Generator<string> {
  for (const l of lines) yield `${l}\r\n`;
}

function messages(n: number): string {
  return n === 1 ? "1 message" : `${n} messages`;
}
