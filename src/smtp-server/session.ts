// One SMTP connection (RFC 5321): reads command lines, dispatches them through the command table,
// and owns at most one Transaction. Policy (who may receive) and storage (the spool) come in through
// small interfaces. Replies are queued and written once per batch of pipelined commands (RFC 2920);
// no command is read while unread replies pile up (bounded memory per connection). Refuses clients
// that talk before the greeting, pipeline without PIPELINING (RFC 2920 §3.1) or speak HTTP.
import { domainToASCII } from "node:url";
import { isAscii, parsePath, formatAddress, type Address } from "../core/address.js";
import { ExpandedRecipients } from "../delivery/expanded-recipients.js";
import { MailError } from "../core/errors.js";
import { formatReply, reply, replyLines, replyText, type Reply } from "../core/reply.js";
import type { LoginResult } from "../auth/authenticator.js";
import { SASL_MECHANISMS } from "../auth/sasl.js";
import type { Logger } from "../core/log.js";
import type { Connection } from "../protocol/connection.js";
import { DotDecoder, type BareMode } from "../protocol/dot-decoder.js";
import { ReplyQueue } from "../protocol/reply-queue.js";
import { ReaderClosed, ReaderInterrupted, ReaderTimeout, SocketReader } from "../protocol/socket-reader.js";
import { upgradeToTls } from "../protocol/upgrade-to-tls.js";
import { decodeUtf8, hasControlChars, printable } from "../protocol/wire-text.js";
import type { ClientScreen, ClientScreening } from "../spam/dnsbl.js";
import type { GreylistPolicy } from "../spam/greylist.js";
import type { Envelope, IncomingMessage } from "../spool/spool.js";
import type { DecisionCache, RecipientDecision } from "./recipient-policy.js";
import { COMMANDS, HELP_TEXT, commandFor, refusal, type SessionState } from "./commands.js";
import { isReply, parseMailArgs } from "./mail-args.js";
import { parseMailDsnParams, parseRcptDsnParams } from "./dsn-params.js";
import { saslDialogue } from "./sasl-dialogue.js";
import { Transaction } from "./transaction.js";

export interface SmtpSessionOptions {
  readonly hostname: string;
  readonly maxMessageSize: number;
  readonly maxRecipients: number;
  /** limits.max_expanded_recipients: recipients of one message after aliases and lists. */
  readonly maxExpandedRecipients: number;
  readonly maxErrors: number;
  readonly maxJunkCommands: number;
  readonly commandTimeoutMs: number;
  readonly dataTimeoutMs: number;
  readonly bareLineEndings: BareMode;
  /** The domain that a bare <Postmaster> (RFC 5321 §4.5.1) belongs to. */
  readonly postmasterDomain: string;
  /** smtp.greet_pause: "220-" first, then this long before "220 "; a client talking meanwhile is refused. */
  readonly greetPauseMs?: number;
  /** A submission port (RFC 6409: 587, 465): MAIL needs AUTH first. */
  readonly submission?: boolean;
  /** smtp.auth_without_tls: AUTH before TLS is offered to loopback clients, or to nobody. */
  readonly authWithoutTls?: "never" | "loopback";
  /** Failed AUTH attempts in one session before 421 and close. */
  readonly maxAuthFailures?: number;
  /** How long a failed AUTH waits before its 535. */
  readonly authFailureDelayMs?: number;
  /** submission.sender_check: an authenticated user sends only as their own addresses. */
  readonly senderCheck?: boolean;
  /** submission.received_auth_user: the Received header names the authenticated user. */
  readonly receivedAuthUser?: boolean;
}

export interface SmtpPolicy {
  /**
   * With a cache, an address already decided in this transaction is not resolved again. With
   * mayRelay (an authenticated client), an off-site address is accepted for the queue.
   */
  checkRecipient(a: Address, cache?: DecisionCache, mayRelay?: boolean): RecipientDecision;
  /** May this authenticated user send with this envelope sender ("" is the null sender)? */
  senderAllowed?(user: string, sender: string): boolean;
  vrfy(arg: string): Reply;
  expn(arg: string): Reply;
}

/** The queue, for ETRN (RFC 1985): starts a run for a domain and says how many messages wait for it. */
export interface QueueControl {
  /** subdomains: "@example.org" asks for example.org and every name under it. */
  flush(domain: string, subdomains: boolean): Promise<number>;
  isLocalDomain(domain: string): boolean;
}

export interface SmtpAccounts {
  password(peer: string, user: string, password: string): Promise<LoginResult>;
}

export interface MessageStore {
  open(env: Envelope): Promise<IncomingMessage>;
}

export interface SmtpSessionDeps {
  readonly options: SmtpSessionOptions;
  readonly policy: SmtpPolicy;
  readonly store: MessageStore;
  /** The queue for ETRN; without it ETRN is not offered (502). */
  readonly queue?: QueueControl;
  /** Checks SMTP AUTH credentials (auth/authenticator.ts); without it AUTH is not offered. */
  readonly accounts?: SmtpAccounts;
  readonly log: Logger;
  readonly newId: () => string;
  /** DNSBL/DNSWL at connect (spam/dnsbl.ts); the smtp listener only. A listed client gets 554 instead of 220. */
  readonly screen?: ClientScreen;
  /** Greylisting at RCPT (spam/greylist.ts) for unauthenticated clients the screen did not exempt or allowlist. */
  readonly greylist?: GreylistPolicy;
}

/** Addresses named in one log line at most; the totals say how many there were. */
const MAX_LOGGED_COPIES = 100;

/** Where a delivered message's copies went (aliases and lists expanded): mailboxes and the queue. */
function copiesWent(t: Transaction): { mailboxes: string[]; mailboxes_total: number; queued: string[]; queued_total: number } {
  const local = new Set<string>();
  const remote = new Set<string>();
  for (const r of t.recipients) {
    for (const a of r.route.local) local.add(a);
    for (const a of r.route.remote) remote.add(a);
  }
  return {
    mailboxes: [...local].slice(0, MAX_LOGGED_COPIES),
    mailboxes_total: local.size,
    queued: [...remote].slice(0, MAX_LOGGED_COPIES),
    queued_total: remote.size,
  };
}

type Opened = { readonly kind: "open"; readonly message: IncomingMessage } | { readonly kind: "failed"; readonly cause: unknown };

/** RFC 5321 §4.5.3.1.4: 512 octets including CRLF. */
export const MAX_COMMAND_LINE = 510;

/** A client refused at the greeting may still say QUIT: this many lines within this long, then the connection ends. */
const REFUSED_MAX_LINES = 3;
const REFUSED_LINGER_MS = 5000;

export class SmtpSession {
  private readonly reader: SocketReader;
  private readonly replies: ReplyQueue;
  private closed = false;
  private helo: string | null = null;
  private esmtp = false;
  private transaction: Transaction | null = null;
  private errors = 0;
  private authFailures = 0;
  private junk = 0;
  private shuttingDown = false;
  private readingCommand = false;
  /** Why the connection ended, for the log line of a transaction it cut short. */
  private endReason = "disconnected";
  private readonly peer: string;
  /** What the DNSBL/DNSWL screen said at connect (null: no screen); exempt and allowlisted clients skip greylisting. */
  private screening: ClientScreening["kind"] | null = null;

  constructor(
    private readonly conn: Connection,
    private readonly deps: SmtpSessionDeps,
  ) {
    this.peer = conn.info.peer;
    this.replies = new ReplyQueue(conn.socket);
    this.reader = new SocketReader(conn.socket, () => this.replies.flush());
  }

  private get opts(): SmtpSessionOptions {
    return this.deps.options;
  }

  get state(): SessionState {
    if (this.helo === null) return "init";
    const t = this.transaction;
    if (!t) return "idle";
    if (t.bdat) return "bdat";
    return t.recipients.length ? "rcpt" : "mail";
  }

  /** Server shutdown: an idle session is told 421 now; one in a transaction after it ends. */
  shutdown(): void {
    this.shuttingDown = true;
    if (this.readingCommand && !this.transaction) this.reader.interrupt("shutdown");
  }

  /** The shutdown grace period is over and the listener cuts the connection. */
  cut(): void {
    this.endReason = "cut at shutdown";
  }

  async run(): Promise<void> {
    try {
      if (!(await this.greet())) return;
      while (!this.closed) {
        if (this.shuttingDown && !this.transaction) {
          this.send(reply(421, "4.3.2", `${this.opts.hostname} Service shutting down, closing connection`));
          this.endReason = "shutdown";
          break;
        }
        this.reader.setTimeout(this.opts.commandTimeoutMs);
        // Backpressure: no next command while the peer leaves our replies unread.
        await this.replies.ready();
        this.readingCommand = true;
        const line = await this.reader.readLine(MAX_COMMAND_LINE);
        this.readingCommand = false;
        if (line === null) break;
        if (line === "too-long") {
          this.error(reply(500, "5.5.2", "Error: line too long"));
          continue;
        }
        await this.dispatch(line);
      }
    } catch (err) {
      if (err instanceof ReaderTimeout) {
        this.endReason = "timeout";
        this.send(reply(421, "4.4.2", `${this.opts.hostname} Error: timeout exceeded`));
      } else if (err instanceof ReaderInterrupted) {
        if (this.endReason === "disconnected") this.endReason = "shutdown";
        this.send(reply(421, "4.3.2", `${this.opts.hostname} Service shutting down, closing connection`));
      } else if (!(err instanceof ReaderClosed)) {
        this.endReason = "internal error";
        this.deps.log.error({ err }, "session failed");
        this.send(reply(421, "4.3.0", `${this.opts.hostname} Error: internal error, closing connection`));
      }
    } finally {
      await this.endTransaction(this.endReason);
      this.close();
    }
  }

  /**
   * The 220 greeting. With a greet pause, "220-" goes first and a client that talks before the
   * final "220 " (a spam bot that does not wait) is refused 554 5.5.0 and closed. False: closed.
   */
  private async greet(): Promise<boolean> {
    const banner = `${this.opts.hostname} ESMTP Petrel`;
    // The DNS lists are asked while the greet pause runs (as postscreen does): the client waits once.
    const screening = this.deps.screen?.screen(this.peer);
    const pause = this.opts.greetPauseMs ?? 0;
    if (pause > 0) {
      this.replies.push(`220-${banner}\r\n`);
      this.replies.flush();
      const heard = await this.reader.waitForInput(pause);
      if (heard === "closed") return false;
      if (heard === "input") {
        this.refuseConnection(reply(554, "5.5.0", "Protocol error: talked before the greeting"), "talked before the greeting");
        return false;
      }
    }
    if (screening) {
      const s = await screening;
      this.screening = s.kind;
      if (s.kind === "listed") {
        // After a "220-" the greeting must end in 220 (one reply, one code): the refusal then answers each command.
        if (pause > 0) this.send(reply(220, undefined, banner));
        await this.refuseAtGreeting(s.reply, `listed in ${s.zone}`, pause > 0);
        return false;
      }
    }
    this.send(reply(220, undefined, banner));
    return true;
  }

  /**
   * 554 in place of the 220 (RFC 5321 §3.1, §4.3.2). The client may still QUIT (221); any other command
   * gets 503 (§3.1), or the 554 itself when a greet pause had already begun a 220 greeting. Bounded in
   * lines and time: a bot does not hold the connection slot.
   */
  private async refuseAtGreeting(r: Reply, why: string, greeted: boolean): Promise<void> {
    this.deps.log.info({ peer: this.peer, reason: why, reply: replyText(r) }, "connection refused");
    this.endReason = why;
    if (!greeted) this.send(r);
    this.reader.setTimeout(REFUSED_LINGER_MS);
    try {
      for (let i = 0; i < REFUSED_MAX_LINES; i++) {
        await this.replies.ready();
        const line = await this.reader.readLine(MAX_COMMAND_LINE);
        if (line === null) return;
        if (line !== "too-long" && /^QUIT *$/i.test(line.toString("latin1"))) return this.send(reply(221, "2.0.0", "Bye"));
        this.send(greeted ? r : reply(503, "5.5.1", "Error: service unavailable; send QUIT"));
      }
    } catch (err) {
      if (!(err instanceof ReaderTimeout || err instanceof ReaderClosed || err instanceof ReaderInterrupted)) throw err;
    } finally {
      this.closed = true;
    }
  }

  private async dispatch(raw: Buffer): Promise<void> {
    // The verb is ASCII in every valid command, so it can be found before the line is decoded.
    const ascii = raw.toString("latin1");
    const sp = ascii.indexOf(" ");
    const verb = (sp < 0 ? ascii : ascii.slice(0, sp)).toUpperCase();
    const row = commandFor(verb, ascii);
    if (row?.nonSmtp) return row.run(this, ascii);
    // RFC 2920 §3.1: without PIPELINING offered (no EHLO yet, or HELO), a client must wait for each
    // reply; more input already here means it did not (Postfix 3.9 smtpd_forbid_unauth_pipelining).
    if (!this.pipeliningOffered && this.reader.buffered > 0)
      return this.refuseConnection(reply(554, "5.5.0", "Error: SMTP protocol synchronization"), "unauthorised pipelining", ascii);
    const line = decodeUtf8(raw);
    if (line === null) return this.invalidUtf8(verb);
    const arg = sp < 0 ? "" : line.slice(line.indexOf(" ") + 1);
    if (hasControlChars(line)) return this.error(reply(500, "5.5.2", "Error: bad characters in command"));
    if (!row) return this.error(reply(500, "5.5.2", line.trim() === "" ? "Error: bad syntax" : "Error: command not recognized"));
    if (row.junk && this.overJunkLimit()) return;
    const state = this.state;
    if (!row.allowedIn.includes(state)) return this.error(refusal(row, state));
    await row.run(this, arg);
  }

  private get pipeliningOffered(): boolean {
    return this.esmtp && this.helo !== null;
  }

  /**
   * A line that is not UTF-8 (RFC 3629) is refused before anything reads it: a MAIL or RCPT path
   * gets 553 5.6.7 (RFC 6531 §3.6: the address cannot be used), any other command 500 5.5.2.
   */
  private invalidUtf8(verb: string): void {
    const row = COMMANDS.get(verb);
    if ((verb === "MAIL" || verb === "RCPT") && row) {
      if (!row.allowedIn.includes(this.state)) return this.error(refusal(row, this.state));
      const r = reply(553, "5.6.7", "Address is not valid UTF-8");
      if (verb === "MAIL") return this.refuseMail(r, "(invalid UTF-8)");
      this.transaction?.attempts.push({ to: "(invalid UTF-8)", reply: r });
      return this.error(r);
    }
    this.error(reply(500, "5.5.2", "Error: command is not valid UTF-8"));
  }

  /** Counts a command that cannot lead to a delivery; true when that was one too many (421 sent). */
  private overJunkLimit(): boolean {
    if (++this.junk <= this.opts.maxJunkCommands) return false;
    this.refuseConnection(reply(421, "4.7.0", `${this.opts.hostname} Error: too many commands without mail, closing connection`), "too many commands without mail");
    return true;
  }

  /** Answers once more and ends the connection, logging why (every refusal is logged at info). */
  private refuseConnection(r: Reply, why: string, line?: string): void {
    this.deps.log.info({ peer: this.peer, helo: this.helo, reason: why, reply: replyText(r), ...(line === undefined ? {} : { line: printable(line, 100) }) }, "connection refused");
    this.endReason = why;
    this.send(r);
    this.closed = true;
  }

  // ---- replies ----

  /** The 250 already written at the spool's ack (finishTransaction must not send it again). */
  private sentAtAck: Reply | null = null;

  send(r: Reply): void {
    this.replies.push(formatReply(r));
  }

  /** Sends an error reply and counts it; too many errors end the session (421). */
  private error(r: Reply): void {
    this.send(r);
    if (++this.errors >= this.opts.maxErrors)
      this.refuseConnection(reply(421, "4.7.0", `${this.opts.hostname} Error: too many errors, closing connection`), "too many errors");
  }

  /** A refused MAIL command: counted as an error and logged at info with its reason. */
  private refuseMail(r: Reply, from: string): void {
    this.deps.log.info({ peer: this.peer, helo: this.helo, from, reason: replyText(r) }, "sender refused");
    this.error(r);
  }

  private close(): void {
    this.closed = true;
    this.replies.end();
  }

  // ---- commands ----

  async hello(arg: string, extended: boolean): Promise<void> {
    const name = arg.trim();
    if (!name) return this.error(reply(501, "5.5.4", `Syntax: ${extended ? "EHLO" : "HELO"} hostname`));
    // The line is valid UTF-8 already. Non-ASCII (a U-label, RFC 6531 §3.7.1) only with EHLO, where
    // SMTPUTF8 is offered; HELO names are ASCII (RFC 5321 §4.1.1.1). No controls, spaces or DEL.
    const allowed = extended ? /^[\x21-\x7e\u00a0-\u{10ffff}]+$/u : /^[\x21-\x7e]+$/;
    if (!allowed.test(name) || Buffer.byteLength(name) > 255) return this.error(reply(501, "5.5.2", "Error: invalid hostname"));
    await this.endTransaction("reset by HELO/EHLO");
    this.helo = name;
    this.esmtp = extended;
    if (!extended) return this.send(reply(250, undefined, this.opts.hostname));
    this.send(reply(250, undefined, `${this.opts.hostname} Hello ${isAscii(name) ? name : domainToASCII(name) || "unknown"} [${this.peer}]`, ...this.capabilities()));
  }

  /** The EHLO keywords for this connection as it is now (RFC 3207: no STARTTLS once TLS is up; RFC 4954: AUTH only where it may be used). */
  private capabilities(): string[] {
    const caps = ["PIPELINING", `SIZE ${this.opts.maxMessageSize}`];
    if (this.conn.tlsAvailable && !this.conn.secure) caps.push("STARTTLS");
    if (this.authOffered) caps.push(`AUTH ${SASL_MECHANISMS.join(" ")}`);
    caps.push("8BITMIME", "DSN", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING", "HELP");
    if (this.deps.queue) caps.push("ETRN");
    return caps;
  }

  /** This connection offers (or offered) AUTH in its EHLO. */
  private get authAdvertised(): boolean {
    return this.authOffered || this.conn.info.auth !== null;
  }

  /** AUTH may be used now: over TLS, or before it from loopback when smtp.auth_without_tls allows. */
  private get authOffered(): boolean {
    if (!this.deps.accounts || this.conn.info.auth !== null) return false;
    return this.conn.secure || (this.opts.authWithoutTls === "loopback" && this.conn.info.loopback);
  }

  /**
   * STARTTLS (RFC 3207): 220, then the handshake on the same socket. Anything the client pipelined
   * after the command is thrown away unread (§4.2, CVE-2011-0411), and the session starts over:
   * no HELO, no transaction. A failed handshake is logged and ends the connection.
   */
  async startTls(arg: string): Promise<void> {
    if (arg.trim() !== "") return this.error(reply(501, "5.5.4", "Syntax: STARTTLS"));
    if (this.conn.secure) return this.error(reply(554, "5.5.1", "Error: TLS already active"));
    if (!this.conn.tlsAvailable) return this.error(reply(454, "4.7.0", "TLS not available"));
    this.send(reply(220, "2.0.0", "Ready to start TLS"));
    const upgrade = await upgradeToTls(this.conn, this.reader, this.replies, this.deps.log, { helo: this.helo });
    if (upgrade.kind === "failed") {
      this.endReason = "TLS handshake failed";
      this.closed = true;
      return;
    }
    await this.endTransaction("STARTTLS");
    this.helo = null;
    this.esmtp = false;
  }

  /**
   * AUTH (RFC 4954): 334 continuations, "*" cancels (501 5.0.0), 235 2.7.0 or 535 5.7.8 (the same for
   * an unknown user and a wrong password; the password check costs the same either way, and every
   * failure waits authFailureDelayMs). Too many failures in a session, or from the client's address
   * (the authenticator's throttle), end the connection with 421. Secrets never reach the log.
   */
  async auth(arg: string): Promise<void> {
    const accounts = this.deps.accounts;
    if (!accounts) return this.error(reply(502, "5.5.1", "Error: authentication not enabled"));
    if (this.conn.info.auth !== null) return this.error(reply(503, "5.5.1", "Error: already authenticated"));
    if (!this.authOffered) return this.error(reply(538, "5.7.11", "Encryption required for requested authentication mechanism"));
    const outcome = await saslDialogue(arg, {
      send: (r) => this.send(r),
      readLine: async (max) => {
        this.reader.setTimeout(this.opts.commandTimeoutMs);
        this.readingCommand = true;
        const line = await this.reader.readLine(max);
        this.readingCommand = false;
        return line;
      },
    });
    if (outcome.kind === "closed") throw new ReaderClosed();
    if (outcome.kind === "refused") {
      if (outcome.why) this.deps.log.info({ peer: this.peer, reason: outcome.why }, "smtp authentication malformed");
      return this.error(outcome.reply);
    }
    const method = outcome.method;
    const checking = Date.now();
    // An authorization identity other than the user: a well-formed attempt to act as someone else.
    const result =
      outcome.kind === "identity-refused" ? this.refusedIdentity(outcome.why, method) : await accounts.password(this.peer, outcome.user, outcome.password);
    if (result.kind === "ok") {
      this.conn.info.auth = result.user;
      this.deps.log.info({ peer: this.peer, user: result.user, method }, "smtp authenticated");
      return this.send(reply(235, "2.7.0", "Authentication successful"));
    }
    this.authFailures++;
    const why = result.kind === "throttled" ? `throttled-${result.scope}` : result.kind;
    this.deps.log.warn({ peer: this.peer, user: printable(result.user, 100), method, result: why, failures: this.authFailures }, "smtp authentication failed");
    // The failure is answered authFailureDelayMs after the check began, not after it ended: the
    // reply time then says nothing about whether the account exists or how long its hash took.
    const delay = (this.opts.authFailureDelayMs ?? 0) - (Date.now() - checking);
    if (delay > 0) {
      this.replies.flush();
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
    if (result.kind === "throttled")
      return this.refuseConnection(reply(421, "4.7.0", `${this.opts.hostname} Error: too many failed logins, try again later`), "authentication throttled");
    if (result.kind === "busy") return this.send(reply(454, "4.7.0", "Temporary authentication failure, try again later"));
    if (this.authFailures >= (this.opts.maxAuthFailures ?? 3)) {
      this.send(reply(535, "5.7.8", "Error: authentication failed"));
      return this.refuseConnection(reply(421, "4.7.0", `${this.opts.hostname} Error: too many failed logins, closing connection`), "too many authentication failures");
    }
    this.error(reply(535, "5.7.8", "Error: authentication failed"));
  }

  /** A refused authorization identity counts as a failed login (535 after the same delay). */
  private refusedIdentity(why: string, method: string): LoginResult {
    this.deps.log.info({ peer: this.peer, method, reason: why }, "smtp authorization identity refused");
    return { kind: "failed", user: "(authzid refused)" };
  }

  mail(arg: string): void {
    // RFC 6409 §4.3 / RFC 4954 §6: a submission port takes mail only from authenticated users.
    if (this.opts.submission && this.conn.info.auth === null) return this.refuseMail(reply(530, "5.7.0", "Authentication required"), arg);
    const parsed = parseMailArgs(arg, "FROM:");
    if (isReply(parsed)) return this.refuseMail(parsed, arg);
    const refuse = (r: Reply) => this.refuseMail(r, parsed.path);
    let size: number | null = null;
    let utf8 = false;
    // RFC 3461 §4.3/4.4: RET and ENVID (checked by dsn-params.ts), the rest below.
    const dsn = parseMailDsnParams(parsed.params);
    if (isReply(dsn)) return refuse(dsn);
    for (const [key, value] of parsed.params) {
      if (key === "RET" || key === "ENVID") continue;
      if (key === "SIZE") {
        if (value === null || !/^\d{1,20}$/.test(value)) return refuse(reply(501, "5.5.4", "Bad SIZE parameter"));
        size = Number(value);
        if (size > this.opts.maxMessageSize) return refuse(reply(552, "5.3.4", "Message size exceeds fixed maximum message size"));
      } else if (key === "BODY") {
        const v = (value ?? "").toUpperCase();
        if (v !== "7BIT" && v !== "8BITMIME") return refuse(reply(555, "5.5.4", `Unsupported BODY type: ${printable(value ?? "")}`));
      } else if (key === "SMTPUTF8" && value === null) utf8 = true;
      else if (key === "AUTH" && value !== null && this.authAdvertised) {
        // RFC 4954 §5: the AUTH parameter must be accepted where AUTH is offered. Its identity is
        // not trusted (Petrel relays for no one on another server's word), so it is only checked.
        if (!/^(?:<>|[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})+$/.test(value)) return refuse(reply(501, "5.5.4", "Bad AUTH parameter"));
      }
      else return refuse(reply(555, "5.5.4", `Unsupported option: ${printable(key)}`));
    }
    const path = parsePath(parsed.path);
    if (path === null) return refuse(reply(553, "5.1.7", `${printable(parsed.path)}: Sender address rejected: bad address syntax`));
    const sender = path === "null-path" ? "" : formatAddress(path);
    if (!utf8 && !isAscii(sender)) return refuse(reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8"));
    const user = this.conn.info.auth;
    if (user !== null && (this.opts.senderCheck ?? true) && this.deps.policy.senderAllowed && !this.deps.policy.senderAllowed(user, sender))
      return refuse(reply(553, "5.7.1", `<${printable(sender)}>: Sender address rejected: not owned by user ${user}`));
    this.transaction = new Transaction(this.deps.newId(), sender, size, utf8);
    if (dsn.ret || dsn.envid) this.transaction.dsn = dsn;
    // The junk count is not reset here (a MAIL/RSET loop would never end): only a delivery resets it.
    this.send(reply(250, "2.1.0", "Ok"));
  }

  rcpt(arg: string): void {
    const t = this.transaction!;
    const parsed = parseMailArgs(arg, "TO:");
    if (isReply(parsed)) return this.error(parsed);
    const given = parsed.path.slice(1, -1);
    const fail = (r: Reply) => {
      t.attempts.push({ to: given, reply: r });
      this.error(r);
    };
    // RFC 3461 §4.1/4.2: NOTIFY and ORCPT; any other parameter is unknown.
    const unknown = [...parsed.params.keys()].find((k) => k !== "NOTIFY" && k !== "ORCPT");
    if (unknown !== undefined) return fail(reply(555, "5.5.4", `Unsupported option: ${printable(unknown)}`));
    const dsn = parseRcptDsnParams(parsed.params);
    if (isReply(dsn)) return fail(dsn);
    let address: Address | null;
    if (given.toLowerCase() === "postmaster") address = { local: "postmaster", domain: this.opts.postmasterDomain };
    else {
      const p = parsePath(parsed.path);
      address = p === "null-path" ? null : p;
    }
    if (!address) return fail(reply(501, "5.1.3", `${printable(parsed.path)}: Recipient address rejected: bad address syntax`));
    if (!t.smtpUtf8 && !isAscii(given)) return fail(reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8"));
    if (t.recipients.length >= this.opts.maxRecipients) {
      const r = reply(452, "4.5.3", "Error: too many recipients");
      t.attempts.push({ to: given, reply: r });
      // Not a client error (the client sends the rest later), but it cannot go on forever either.
      if (this.overJunkLimit()) return;
      return this.send(r);
    }
    const decision = this.deps.policy.checkRecipient(address, t.decisions, this.conn.info.auth !== null);
    if (!decision.route) return fail(decision.reply);
    const greylisted = this.greylisted(t, address);
    if (greylisted) {
      t.attempts.push({ to: given, reply: greylisted });
      // Not a client error (a real MTA retries later), but a bound like the 452s below.
      if (this.overJunkLimit()) return;
      return this.send(greylisted);
    }
    const admission = (t.expanded ??= new ExpandedRecipients(this.opts.maxExpandedRecipients)).admit(decision.route);
    if (admission.kind === "over") {
      // RFC 5321 §4.5.3.1.10: 452 when the rest may follow in another transaction; a route larger
      // than the cap by itself never fits, and 452 would make the client retry it forever.
      if (admission.alone)
        return fail(reply(550, "5.5.3", `<${formatAddress(address)}>: expands to ${admission.size} recipients, more than the limit of ${t.expanded.max}`));
      const r = reply(452, "4.5.3", "Error: too many recipients after expansion");
      t.attempts.push({ to: given, reply: r });
      if (this.overJunkLimit()) return; // like the 452 above: not an error, but not endless either
      return this.send(r);
    }
    t.recipients.push({ address: formatAddress(address), route: decision.route, ...(dsn.notify || dsn.orcpt ? { dsn } : {}) });
    t.attempts.push({ to: given, reply: decision.reply });
    this.send(decision.reply);
  }

  /**
   * Greylisting (spam/greylist.ts) for a recipient that exists: the 450 to send, or null when it passes.
   * Authenticated clients and those the screen exempted or found on an allowlist are not greylisted.
   */
  private greylisted(t: Transaction, address: Address): Reply | null {
    const greylist = this.deps.greylist;
    if (!greylist || this.conn.info.auth !== null || this.screening === "exempt" || this.screening === "allowlisted") return null;
    const to = formatAddress(address);
    const d = greylist.check(this.peer, t.sender, to);
    if (d.kind === "pass") {
      if (d.why === "retried") this.deps.log.info({ id: t.id, peer: this.peer, from: t.sender, to }, "greylisting passed after retry");
      return null;
    }
    this.deps.log.info({ id: t.id, peer: this.peer, from: t.sender, to, retry_in: d.retryInSeconds }, "greylisted");
    return d.reply;
  }

  async data(arg: string): Promise<void> {
    if (arg.trim() !== "") return this.error(reply(501, "5.5.4", "Syntax: DATA"));
    const t = this.transaction!;
    // Open the files while 354 travels to the client and the content comes back.
    const opening = this.openMessage(t);
    this.send(reply(354, undefined, "End data with <CR><LF>.<CR><LF>"));
    const decoder = new DotDecoder(this.opts.bareLineEndings);
    const max = this.opts.maxMessageSize;
    let tooBig = false;
    let failure: unknown = null;
    this.reader.setTimeout(this.opts.dataTimeoutMs);
    try {
      await this.reader.readDotData(decoder, async (pieces) => {
        if (tooBig || failure) return;
        if (decoder.size > max) {
          tooBig = true;
          return;
        }
        try {
          const opened = await opening;
          if (opened.kind === "failed") failure = opened.cause;
          else await opened.message.write(pieces);
        } catch (err) {
          failure = err;
        }
      });
    } catch (err) {
      // Timeout or disconnect inside DATA: nothing of this message may remain.
      const opened = await opening;
      if (opened.kind === "open") await opened.message.abort();
      throw err;
    }
    const opened = await opening;
    const message = opened.kind === "open" ? opened.message : null;
    let r: Reply;
    if (opened.kind === "failed") r = this.localError(opened.cause);
    else if (failure || !message) r = this.localError(failure);
    else if (tooBig || decoder.size > max) r = reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
    else if (decoder.bareSeen && this.opts.bareLineEndings === "reject")
      r = reply(550, "5.6.0", "Message contains bare CR or LF; lines must end with CRLF (RFC 5321 section 2.3.8)");
    else r = await this.commit(t, message);
    if (r.code !== 250) await message?.abort();
    this.finishTransaction(t, r, decoder.size);
  }

  async bdat(arg: string): Promise<void> {
    const m = /^(\d{1,15})( +LAST)? *$/i.exec(arg);
    if (!m) return this.error(reply(501, "5.5.4", "Syntax: BDAT size [LAST]"));
    const size = Number(m[1]);
    const last = m[2] !== undefined;
    // An empty chunk that is not the last moves nothing forward: a "BDAT 0" loop is junk.
    if (size === 0 && !last && this.overJunkLimit()) return;
    const t = this.transaction;
    this.reader.setTimeout(this.opts.dataTimeoutMs);
    if (!t || t.recipients.length === 0) {
      // RFC 3030 §2: the chunk is read even when the command is refused.
      await this.reader.readExact(size, () => undefined);
      return this.error(t ? reply(554, "5.5.1", "Error: no valid recipients") : refusal(COMMANDS.get("BDAT")!, this.state));
    }
    if (!t.bdat) t.bdat = { message: null, size: 0, failed: null };
    const b = t.bdat;
    if (!b.message && !b.failed) {
      const opened = await this.openMessage(t);
      if (opened.kind === "open") b.message = opened.message;
      else b.failed = this.localError(opened.cause);
    }
    await this.reader.readExact(size, async (piece) => {
      b.size += piece.length;
      if (b.failed) return;
      if (b.size > this.opts.maxMessageSize) {
        b.failed = reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
        return;
      }
      try {
        await b.message!.write([piece]);
      } catch (err) {
        b.failed = this.localError(err);
      }
    });
    if (!last) {
      this.send(b.failed ?? reply(250, "2.0.0", `${size} octets received`));
      return;
    }
    const r = b.failed ?? (await this.commit(t, b.message!));
    if (r.code !== 250) await b.message?.abort();
    this.finishTransaction(t, r, b.size);
  }

  async rset(arg: string): Promise<void> {
    if (arg.trim() !== "") return this.error(reply(501, "5.5.4", "Syntax: RSET"));
    await this.endTransaction("reset");
    this.send(reply(250, "2.0.0", "Ok"));
  }

  quit(): void {
    this.send(reply(221, "2.0.0", "Bye"));
    this.endReason = "quit";
    this.closed = true;
  }

  /**
   * ETRN (RFC 1985 §5): "domain" or "@domain" (with subdomains) starts a queue run for it: 253 with the
   * number of messages waiting, 251 when none wait; "#queue" names and local domains get 459; a queue
   * that cannot be read 458.
   */
  async etrn(arg: string): Promise<void> {
    const queue = this.deps.queue;
    if (!queue) return this.error(reply(502, "5.5.1", "Error: command not implemented"));
    const target = arg.trim();
    if (target === "") return this.error(reply(501, "5.5.4", "Syntax: ETRN domain"));
    if (target.startsWith("#")) return this.send(reply(459, "4.7.1", `${printable(target, 64)}: queue names are not supported`));
    const subdomains = target.startsWith("@");
    const domain = (subdomains ? target.slice(1) : target).toLowerCase();
    if (!/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/.test(domain) || domain.length > 253)
      return this.error(reply(501, "5.1.2", "Syntax: ETRN domain (a domain name)"));
    if (queue.isLocalDomain(domain)) return this.send(reply(459, "4.7.1", `<${domain}>: mail for this domain is delivered here, not queued`));
    let waiting: number;
    try {
      waiting = await queue.flush(domain, subdomains);
    } catch (err) {
      this.deps.log.error({ err, domain }, "ETRN: cannot start a queue run");
      return this.send(reply(458, "4.3.0", `Unable to queue messages for node <${domain}>`));
    }
    this.deps.log.info({ peer: this.peer, domain, subdomains, waiting }, "ETRN");
    if (waiting === 0) return this.send(reply(251, "2.0.0", `OK, no messages waiting for node <${domain}>`));
    this.send(reply(253, "2.0.0", `OK, ${waiting} pending messages for node <${domain}> started`));
  }

  /** An HTTP request or header line sent to the SMTP port: 221 2.7.0 and close (logged). */
  nonSmtp(line: string): void {
    this.refuseConnection(reply(221, "2.7.0", "Error: this is an SMTP server, not a web server; closing connection"), "non-SMTP command", line);
  }

  help(arg: string): void {
    const topic = arg.trim().toUpperCase();
    if (topic && !COMMANDS.has(topic)) return this.send(reply(504, "5.5.1", `HELP topic not known: ${printable(topic)}`));
    this.send(reply(214, "2.0.0", ...(topic ? [`${topic}: see RFC 5321 section 4.1.1`] : HELP_TEXT)));
  }

  vrfy(arg: string): void {
    const target = withoutSmtpUtf8(arg);
    if (target.trim() === "") return this.error(reply(501, "5.5.4", "Syntax: VRFY address"));
    this.respond(asciiUnlessUtf8(this.deps.policy.vrfy(target), target !== arg));
  }

  async expn(arg: string): Promise<void> {
    const target = withoutSmtpUtf8(arg);
    if (target.trim() === "") return this.error(reply(501, "5.5.4", "Syntax: EXPN list"));
    const r = asciiUnlessUtf8(this.deps.policy.expn(target), target !== arg);
    if (r.code >= 500) return this.error(r);
    // A big list streams with backpressure instead of becoming one string (and one socket buffer).
    await this.replies.pushAll(replyLines(r));
  }

  /** Sends a reply, counting 5xx ones as client errors. */
  respond(r: Reply): void {
    if (r.code >= 500) this.error(r);
    else this.send(r);
  }

  // ---- helpers ----

  /** The "with" keyword of the Received header (RFC 3848; RFC 6531 §3.7.3 for UTF8SMTP). */
  private protocol(): string {
    const suffix = (this.conn.secure ? "S" : "") + (this.conn.info.auth !== null ? "A" : "");
    if (this.transaction?.smtpUtf8) return `UTF8SMTP${suffix}`;
    return this.esmtp ? `ESMTP${suffix}` : "SMTP";
  }

  /** Opens the message's files; a failure (disk full: 452) is answered after the content is read. */
  private async openMessage(t: Transaction): Promise<Opened> {
    try {
      const message = await this.deps.store.open({
        id: t.id,
        sender: t.sender,
        recipients: t.recipients,
        helo: this.heloForTrace(t),
        peerAddress: this.peer,
        hostname: this.opts.hostname,
        protocol: this.protocol(),
        source: this.conn.info.auth !== null ? "submission" : "smtp",
        ...(t.dsn ? { dsn: t.dsn } : {}),
        tls: this.conn.info.tls,
        authUser: this.opts.receivedAuthUser ? this.conn.info.auth : null,
        receivedAt: new Date(),
      });
      return { kind: "open", message };
    } catch (cause) {
      return { kind: "failed", cause };
    }
  }

  /**
   * The HELO name for the Received header: as given when ASCII or under SMTPUTF8 (it is valid UTF-8
   * and free of controls, checked in hello()); otherwise its A-label form, so raw 8-bit never reaches
   * the header of a message that was not sent with SMTPUTF8.
   */
  private heloForTrace(t: Transaction): string {
    const helo = this.helo ?? "unknown";
    if (isAscii(helo) || t.smtpUtf8) return helo;
    return domainToASCII(helo) || "unknown";
  }

  private async commit(t: Transaction, message: IncomingMessage): Promise<Reply> {
    try {
      const ok = reply(250, "2.0.0", `Ok: queued as ${t.id}`);
      // The 250 is written right at the ack (no promise chain between them for a kill to fall in).
      await message.commit(() => {
        this.send(ok);
        this.replies.flush();
        this.sentAtAck = ok;
      });
      return ok;
    } catch (err) {
      return this.localError(err);
    }
  }

  /** The reply for a failure to store: the MailError's own (452 4.3.1 disk full, 550 5.6.0 ...), else 451 4.3.0. */
  private localError(cause: unknown): Reply {
    const r = cause instanceof MailError ? cause.reply : undefined;
    if (r && r.code >= 500) this.deps.log.info({ err: cause, id: this.transaction?.id }, "message refused while storing");
    else this.deps.log.error({ err: cause, id: this.transaction?.id }, "local error while storing message");
    return r ?? reply(451, "4.3.0", "Error: local error in processing");
  }

  private finishTransaction(t: Transaction, r: Reply, size: number): void {
    this.logTransaction(t, r, size);
    this.transaction = null;
    if (r.code !== 250) return this.error(r);
    this.junk = 0; // as Postfix: only a delivered message resets the junk command count
    if (this.sentAtAck !== r) this.send(r);
    this.sentAtAck = null;
  }

  /** Drops the transaction (RSET, EHLO, disconnect), logging it if MAIL was given. */
  private async endTransaction(why: string): Promise<void> {
    const t = this.transaction;
    if (!t) return;
    this.transaction = null;
    await t.bdat?.message?.abort();
    this.logTransaction(t, null, t.bdat?.size ?? 0, why);
  }

  private logTransaction(t: Transaction, r: Reply | null, size: number, aborted?: string): void {
    this.deps.log.info(
      {
        id: t.id,
        peer: this.peer,
        helo: this.helo,
        from: t.sender,
        rcpts: t.attempts.map((a) => ({ to: a.to, reply: replyText(a.reply) })),
        size,
        result: r ? replyText(r) : `aborted: ${aborted}`,
        ...(r?.code === 250 ? copiesWent(t) : {}),
      },
      "transaction",
    );
  }
}

/** RFC 6531 lets VRFY and EXPN end with an SMTPUTF8 parameter; curl always sends it with EXPN. */
function withoutSmtpUtf8(arg: string): string {
  return arg.replace(/ +SMTPUTF8 *$/i, "");
}

/** RFC 6531 §3.7.4.2: without the SMTPUTF8 parameter a VRFY/EXPN reply must stay ASCII. */
function asciiUnlessUtf8(r: Reply, utf8: boolean): Reply {
  if (utf8 || r.lines.every(isAscii)) return r;
  return reply(553, "5.6.7", "The answer contains non-ASCII characters; repeat the command with the SMTPUTF8 parameter");
}
