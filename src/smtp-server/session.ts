// One SMTP connection (RFC 5321): reads command lines, dispatches them through the command table,
// and owns at most one Transaction. Policy (who may receive) and storage (the spool) come in through
// small interfaces. Replies are queued and written once per batch of pipelined commands (RFC 2920).
import type { Socket } from "node:net";
import { isAscii, parsePath, formatAddress, type Address } from "../core/address.js";
import { MailError } from "../core/errors.js";
import { formatReply, reply, replyText, type Reply } from "../core/reply.js";
import type { Logger } from "../core/log.js";
import { DotDecoder, type BareMode } from "../protocol/dot-decoder.js";
import { ReplyQueue } from "../protocol/reply-queue.js";
import { ReaderClosed, ReaderInterrupted, ReaderTimeout, SocketReader } from "../protocol/socket-reader.js";
import type { Envelope, IncomingMessage } from "../spool/spool.js";
import type { RecipientDecision } from "./recipient-policy.js";
import { COMMANDS, HELP_TEXT, refusal, type SessionState } from "./commands.js";
import { isReply, parseMailArgs } from "./mail-args.js";
import { Transaction } from "./transaction.js";

export interface SmtpSessionOptions {
  readonly hostname: string;
  readonly maxMessageSize: number;
  readonly maxRecipients: number;
  readonly maxErrors: number;
  readonly maxJunkCommands: number;
  readonly commandTimeoutMs: number;
  readonly dataTimeoutMs: number;
  readonly bareLineEndings: BareMode;
  /** The domain that a bare <Postmaster> (RFC 5321 §4.5.1) belongs to. */
  readonly postmasterDomain: string;
}

export interface SmtpPolicy {
  checkRecipient(a: Address): RecipientDecision;
  vrfy(arg: string): Reply;
  expn(arg: string): Reply;
}

export interface MessageStore {
  open(env: Envelope): Promise<IncomingMessage>;
}

export interface SmtpSessionDeps {
  readonly options: SmtpSessionOptions;
  readonly policy: SmtpPolicy;
  readonly store: MessageStore;
  readonly log: Logger;
  readonly newId: () => string;
}

/** RFC 5321 §4.5.3.1.4: 512 octets including CRLF. */
export const MAX_COMMAND_LINE = 510;

export class SmtpSession {
  private readonly reader: SocketReader;
  private readonly replies: ReplyQueue;
  private closed = false;
  private helo: string | null = null;
  private esmtp = false;
  private transaction: Transaction | null = null;
  private errors = 0;
  private junk = 0;
  private shuttingDown = false;
  private readingCommand = false;
  private readonly peer: string;

  constructor(
    socket: Socket,
    private readonly deps: SmtpSessionDeps,
  ) {
    this.peer = (socket.remoteAddress ?? "unknown").replace(/^::ffff:/, "");
    this.replies = new ReplyQueue(socket);
    this.reader = new SocketReader(socket, () => this.replies.flush());
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

  async run(): Promise<void> {
    this.send(reply(220, undefined, `${this.opts.hostname} ESMTP Petrel`));
    try {
      while (!this.closed) {
        if (this.shuttingDown && !this.transaction) {
          this.send(reply(421, "4.3.2", `${this.opts.hostname} Service shutting down, closing connection`));
          break;
        }
        this.reader.setTimeout(this.opts.commandTimeoutMs);
        this.readingCommand = true;
        const line = await this.reader.readLine(MAX_COMMAND_LINE);
        this.readingCommand = false;
        if (line === null) break;
        if (line === "too-long") {
          this.error(reply(500, "5.5.2", "Error: line too long"));
          continue;
        }
        await this.dispatch(line.toString("utf8"));
      }
    } catch (err) {
      if (err instanceof ReaderTimeout) this.send(reply(421, "4.4.2", `${this.opts.hostname} Error: timeout exceeded`));
      else if (err instanceof ReaderInterrupted) this.send(reply(421, "4.3.2", `${this.opts.hostname} Service shutting down, closing connection`));
      else if (!(err instanceof ReaderClosed)) {
        this.deps.log.error({ err }, "session failed");
        this.send(reply(421, "4.3.0", `${this.opts.hostname} Error: internal error, closing connection`));
      }
    } finally {
      await this.endTransaction("disconnected");
      this.close();
    }
  }

  private async dispatch(line: string): Promise<void> {
    const sp = line.indexOf(" ");
    const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
    const arg = sp < 0 ? "" : line.slice(sp + 1);
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(line)) return this.error(reply(500, "5.5.2", "Error: bad characters in command"));
    const row = COMMANDS.get(verb);
    if (!row) return this.error(reply(500, "5.5.2", line.trim() === "" ? "Error: bad syntax" : "Error: command not recognized"));
    if (row.junk && ++this.junk > this.opts.maxJunkCommands) {
      this.send(reply(421, "4.7.0", `${this.opts.hostname} Error: too many commands without mail, closing connection`));
      this.closed = true;
      return;
    }
    const state = this.state;
    if (!row.allowedIn.includes(state)) return this.error(refusal(row, state));
    await row.run(this, arg);
  }

  // ---- replies ----

  send(r: Reply): void {
    this.replies.push(formatReply(r));
  }

  /** Sends an error reply and counts it; too many errors end the session (421). */
  private error(r: Reply): void {
    this.send(r);
    if (++this.errors >= this.opts.maxErrors) {
      this.send(reply(421, "4.7.0", `${this.opts.hostname} Error: too many errors, closing connection`));
      this.closed = true;
    }
  }

  private close(): void {
    this.closed = true;
    this.replies.end();
  }

  // ---- commands ----

  async hello(arg: string, extended: boolean): Promise<void> {
    const name = arg.trim();
    if (!name) return this.error(reply(501, "5.5.4", `Syntax: ${extended ? "EHLO" : "HELO"} hostname`));
    if (!/^[\x21-\x7e\u0080-\uffff]+$/.test(name) || name.length > 255) return this.error(reply(501, "5.5.2", "Error: invalid hostname"));
    await this.endTransaction("reset by HELO/EHLO");
    this.helo = name;
    this.esmtp = extended;
    if (!extended) return this.send(reply(250, undefined, this.opts.hostname));
    this.send(
      reply(
        250,
        undefined,
        `${this.opts.hostname} Hello ${name} [${this.peer}]`,
        "PIPELINING",
        `SIZE ${this.opts.maxMessageSize}`,
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
        "CHUNKING",
        "HELP",
      ),
    );
  }

  mail(arg: string): void {
    const parsed = parseMailArgs(arg, "FROM:");
    if (isReply(parsed)) return this.error(parsed);
    let size: number | null = null;
    let utf8 = false;
    for (const [key, value] of parsed.params) {
      if (key === "SIZE") {
        if (value === null || !/^\d{1,20}$/.test(value)) return this.error(reply(501, "5.5.4", "Bad SIZE parameter"));
        size = Number(value);
        if (size > this.opts.maxMessageSize) return this.error(reply(552, "5.3.4", "Message size exceeds fixed maximum message size"));
      } else if (key === "BODY") {
        const v = (value ?? "").toUpperCase();
        if (v !== "7BIT" && v !== "8BITMIME") return this.error(reply(555, "5.5.4", `Unsupported BODY type: ${value ?? ""}`));
      } else if (key === "SMTPUTF8" && value === null) utf8 = true;
      else return this.error(reply(555, "5.5.4", `Unsupported option: ${key}`));
    }
    const path = parsePath(parsed.path);
    if (path === null) return this.error(reply(553, "5.1.7", `${parsed.path}: Sender address rejected: bad address syntax`));
    const sender = path === "null-path" ? "" : formatAddress(path);
    if (!utf8 && !isAscii(sender)) return this.error(reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8"));
    this.transaction = new Transaction(this.deps.newId(), sender, size, utf8);
    this.junk = 0;
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
    if (parsed.params.size) return fail(reply(555, "5.5.4", `Unsupported option: ${[...parsed.params.keys()][0]}`));
    let address: Address | null;
    if (given.toLowerCase() === "postmaster") address = { local: "postmaster", domain: this.opts.postmasterDomain };
    else {
      const p = parsePath(parsed.path);
      address = p === "null-path" ? null : p;
    }
    if (!address) return fail(reply(501, "5.1.3", `${parsed.path}: Recipient address rejected: bad address syntax`));
    if (!t.smtpUtf8 && !isAscii(given)) return fail(reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8"));
    if (t.recipients.length >= this.opts.maxRecipients) {
      const r = reply(452, "4.5.3", "Error: too many recipients");
      t.attempts.push({ to: given, reply: r });
      return this.send(r); // not a client error: the client sends the rest later
    }
    const decision = this.deps.policy.checkRecipient(address);
    if (!decision.route) return fail(decision.reply);
    t.recipients.push({ address: formatAddress(address), route: decision.route });
    t.attempts.push({ to: given, reply: decision.reply });
    this.send(decision.reply);
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
          const message = await opening;
          if (!message) failure = new Error("cannot open message");
          else await message.write(pieces);
        } catch (err) {
          failure = err;
        }
      });
    } catch (err) {
      // Timeout or disconnect inside DATA: nothing of this message may remain.
      await (await opening)?.abort();
      throw err;
    }
    const message = await opening;
    let r: Reply;
    if (failure || !message) r = this.localError(failure ?? "cannot open message");
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
    const t = this.transaction!;
    this.reader.setTimeout(this.opts.dataTimeoutMs);
    if (t.recipients.length === 0) {
      // RFC 3030 §2: the chunk is read even when the command is refused.
      await this.reader.readExact(size, () => undefined);
      return this.error(reply(554, "5.5.1", "Error: no valid recipients"));
    }
    if (!t.bdat) t.bdat = { message: null, size: 0, failed: null };
    const b = t.bdat;
    if (!b.message && !b.failed) {
      b.message = await this.openMessage(t);
      if (!b.message) b.failed = this.localError("cannot open message");
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
    this.closed = true;
  }

  help(arg: string): void {
    const topic = arg.trim().toUpperCase();
    if (topic && !COMMANDS.has(topic)) return this.send(reply(504, "5.5.1", `HELP topic not known: ${topic}`));
    this.send(reply(214, "2.0.0", ...(topic ? [`${topic}: see RFC 5321 section 4.1.1`] : HELP_TEXT)));
  }

  vrfy(arg: string): void {
    const target = withoutSmtpUtf8(arg);
    if (target.trim() === "") return this.error(reply(501, "5.5.4", "Syntax: VRFY address"));
    this.respond(asciiUnlessUtf8(this.deps.policy.vrfy(target), target !== arg));
  }

  expn(arg: string): void {
    const target = withoutSmtpUtf8(arg);
    if (target.trim() === "") return this.error(reply(501, "5.5.4", "Syntax: EXPN list"));
    this.respond(asciiUnlessUtf8(this.deps.policy.expn(target), target !== arg));
  }

  /** Sends a reply, counting 5xx ones as client errors. */
  respond(r: Reply): void {
    if (r.code >= 500) this.error(r);
    else this.send(r);
  }

  // ---- helpers ----

  private protocol(): string {
    if (this.transaction?.smtpUtf8) return "UTF8SMTP";
    return this.esmtp ? "ESMTP" : "SMTP";
  }

  private async openMessage(t: Transaction): Promise<IncomingMessage | null> {
    try {
      return await this.deps.store.open({
        id: t.id,
        sender: t.sender,
        recipients: t.recipients,
        helo: this.helo ?? "unknown",
        peerAddress: this.peer,
        hostname: this.opts.hostname,
        protocol: this.protocol(),
        receivedAt: new Date(),
      });
    } catch (err) {
      this.deps.log.error({ err, id: t.id }, "cannot open message for writing");
      return null;
    }
  }

  private async commit(t: Transaction, message: IncomingMessage): Promise<Reply> {
    try {
      await message.commit();
      return reply(250, "2.0.0", `Ok: queued as ${t.id}`);
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
    if (r.code === 250) this.send(r);
    else this.error(r);
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
