// `petrel sendmail` (also bin/petrel run through a link named "sendmail"): the /usr/sbin/sendmail that
// cron, Monit, mutt and scripts call. Reads the message from stdin and drops it durably into
// data_dir/maildrop (queue/maildrop.ts) for the server's pickup; never talks to a socket, so it works
// while the server is down. Adds From, Date and Message-ID when missing (RFC 5322 §3.6, RFC 6409 §8),
// removes Bcc; exits with sysexits.h codes and one "sendmail: ..." line per error. Trusts nothing on
// stdin or the command line; memory stays bounded by the header section (MAX_HEADER), never the message.
import { controlRequest } from "../control/control-socket.js";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import type { Command } from "commander";
import { loadConfig, type LoadedConfig } from "../config/load.js";
import { parseAddressList } from "../core/address-list.js";
import { canonical, formatAddress, parseAddress } from "../core/address.js";
import { MailError } from "../core/errors.js";
import { MaildropWriter, type FileOwner } from "../queue/maildrop.js";
import { headerFields, headerSectionEnd, withoutFields } from "../spool/header-fields.js";
import { SubmissionHeaders } from "../spool/submission-headers.js";
import { checkContentStart } from "../spool/trace-headers.js";
import { LoneDotEnd } from "./lone-dot-end.js";
import { SENDMAIL_HELP, parseSendmailArgs, type SendmailOptions } from "./sendmail-options.js";

/** Exit codes from sysexits.h. */
export const EX = {
  OK: 0,
  USAGE: 64,
  DATAERR: 65,
  CANTCREAT: 73,
  IOERR: 74,
  TEMPFAIL: 75,
  NOPERM: 77,
  CONFIG: 78,
} as const;
export type ExitStatus = (typeof EX)[keyof typeof EX];

/** The header section is read whole (for -t and Bcc); a longer one is refused, so memory stays bounded. */
export const MAX_HEADER = 1024 * 1024;

/** A failure with its exit status; the message is printed after "sendmail: ". */
export class SendmailError extends Error {
  constructor(
    readonly status: ExitStatus,
    message: string,
  ) {
    super(message);
    this.name = "SendmailError";
  }
}

export interface SendmailIo {
  readonly stdin: AsyncIterable<Buffer | string>;
  readonly stderr: (line: string) => void;
}

/**
 * Lists `sendmail` in `petrel --help`. cli/main.ts runs it before commander parses anything
 * (sendmail's getopt-style options are not commander's), so this action is never reached.
 */
export function registerSendmail(program: Command): void {
  program
    .command("sendmail")
    .description("queue a message from stdin, like /usr/sbin/sendmail (-t, -f, -F, -i, -oi; works while the server is down)")
    .argument("[options-and-recipients...]")
    .allowUnknownOption();
}

/** Runs sendmail with `args` (after "sendmail"); returns the exit status. */
export async function runSendmail(args: readonly string[], io: SendmailIo = { stdin: process.stdin, stderr: (l) => process.stderr.write(`${l}\n`) }): Promise<ExitStatus> {
  try {
    await sendmail(args, io);
    return EX.OK;
  } catch (err) {
    const e = err instanceof SendmailError ? err : asSendmailError(err);
    io.stderr(`sendmail: ${e.message}`);
    return e.status;
  }
}

async function sendmail(args: readonly string[], io: SendmailIo): Promise<void> {
  const parsed = parseSendmailArgs(args);
  if (parsed.kind === "usage") throw new SendmailError(EX.USAGE, parsed.message);
  if (parsed.kind === "help") return void process.stdout.write(SENDMAIL_HELP);
  const opts = parsed.options;
  for (const w of opts.warnings) io.stderr(`sendmail: warning: ${w}`);

  let config: LoadedConfig;
  try {
    config = loadConfig({ flag: opts.config ?? undefined });
  } catch (err) {
    throw new SendmailError(EX.CONFIG, (err as Error).message);
  }
  const user = os.userInfo();
  const qualify = (addr: string, what: string): string => {
    const a = parseAddress(addr.includes("@") ? addr : `${addr}@${config.hostname}`);
    if (!a) throw new SendmailError(EX.DATAERR, `bad ${what} address: ${addr}`);
    return formatAddress(a);
  };
  const sender = envelopeSender(opts, user.username, config.hostname, qualify);
  const recipients = new Recipients();
  for (const arg of opts.recipients) recipients.addList(arg, "recipient", qualify);
  if (!opts.extractRecipients && recipients.list.length === 0) throw new SendmailError(EX.USAGE, "no recipients given (name them, or use -t to read To, Cc and Bcc)");
  const owner = checkDataDir(config.data_dir);

  const input = new StdinReader(io.stdin, opts.ignoreDots);
  const { header, rest } = await input.headerSection();
  if (header.length + rest.length > 0) checkContentStart((header.length ? header : rest)[0]!);
  const fields = headerFields(header);
  if (opts.extractRecipients) {
    for (const f of fields) if (f.name === "to" || f.name === "cc" || f.name === "bcc") recipients.addList(f.value, `${f.name} header`, qualify);
    if (recipients.list.length === 0) throw new SendmailError(EX.USAGE, "no recipients: none given and none in To, Cc or Bcc");
  }

  const maxSize = config.limits.max_message_size;
  const lineEnd = lineEndOf(header.length ? header : rest);
  const writer = await MaildropWriter.create(
    config.data_dir,
    { sender, recipients: recipients.list, uid: user.uid, user: user.username, received: new Date().toISOString() },
    owner,
  );
  try {
    const headers = new SubmissionHeaders({
      hostname: config.hostname,
      now: () => new Date(),
      messageId: () => `${Date.now().toString(36)}.${crypto.randomBytes(8).toString("hex")}`,
      from: fromField(opts.fullName, sender || `${user.username}@${config.hostname}`),
      lineEnd,
    });
    let size = 0;
    const put = async (pieces: readonly Buffer[]): Promise<void> => {
      for (const p of pieces) {
        size += p.length;
        if (size > maxSize) throw new SendmailError(EX.DATAERR, `message larger than limits.max_message_size (${maxSize} bytes)`);
        await writer.write(p);
      }
    };
    // Bcc is removed whether or not -t named its addresses (Postfix's cleanup does the same).
    await put(headers.feed([...withoutFields(header, fields, new Set(["bcc"])), rest]));
    for await (const chunk of input.body()) await put(headers.feed([chunk]));
    await put(headers.end());
    if (writer.lastContentByte !== 0x0a) await put([Buffer.from(lineEnd)]);
    await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  // The message is safe on disk; a running server takes it at once when asked (else at its next
  // queue run, or at start). Nothing here can fail the send.
  await controlRequest(config.data_dir, { cmd: "pickup" }, 2000).catch(() => undefined);
}

/** -f as given ("" and "<>" are the null sender), else user@hostname; bare names get @hostname. */
function envelopeSender(opts: SendmailOptions, username: string, hostname: string, qualify: (a: string, what: string) => string): string {
  if (opts.sender === null) return qualify(`${username}@${hostname}`, "sender");
  let s = opts.sender.trim();
  if (s.startsWith("<") && s.endsWith(">")) s = s.slice(1, -1);
  return s === "" ? "" : qualify(s, "sender");
}

/** Recipients in order, each once (compared canonically). */
class Recipients {
  readonly list: string[] = [];
  private readonly seen = new Set<string>();

  addList(text: string, what: string, qualify: (a: string, what: string) => string): void {
    const parsed = parseAddressList(text);
    if (parsed.kind === "error") throw new SendmailError(EX.DATAERR, `bad ${what}: ${parsed.reason}: ${text}`);
    for (const raw of parsed.addresses) {
      const addr = qualify(raw, what.replace(/ header$/, ""));
      const key = canonical(parseAddress(addr)!);
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      this.list.push(addr);
    }
  }
}

/** "Full Name <addr>": the name quoted when it has specials, RFC 2047-encoded when not ASCII. */
export function fromField(fullName: string | null, address: string): string {
  const name = fullName?.replace(/[\x00-\x1f\x7f]/g, "").trim() ?? "";
  if (name === "") return address;
  let phrase: string;
  if (/[^\x20-\x7e]/.test(name)) phrase = `=?UTF-8?B?${Buffer.from(name).toString("base64")}?=`;
  else if (/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+$/.test(name)) phrase = name;
  else phrase = `"${name.replace(/["\\]/g, "\\$&")}"`;
  return `${phrase} <${address}>`;
}

/** CRLF when the first line of the input ends so, else LF (the Unix default). */
function lineEndOf(buf: Buffer): "\r\n" | "\n" {
  const lf = buf.indexOf(0x0a);
  return lf > 0 && buf[lf - 1] === 0x0d ? "\r\n" : "\n";
}

/**
 * Only root or the owner of data_dir may drop mail (the maildrop is private to the owner); root's
 * files are given to the owner so the server can read them. Returns that owner for root, else null.
 */
function checkDataDir(dataDir: string): FileOwner | null {
  let st: fs.Stats;
  try {
    st = fs.statSync(dataDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new SendmailError(EX.CONFIG, `data_dir ${dataDir} does not exist (petrel serve creates it on its first start)`);
    throw new SendmailError(EX.CANTCREAT, `cannot use data_dir ${dataDir}: ${code ?? String(err)}`);
  }
  if (!st.isDirectory()) throw new SendmailError(EX.CONFIG, `data_dir ${dataDir} is not a folder`);
  const uid = process.getuid?.();
  if (uid === undefined) return null;
  if (uid === 0) return st.uid === 0 ? null : { uid: st.uid, gid: st.gid };
  if (uid !== st.uid)
    throw new SendmailError(EX.NOPERM, `only root and the owner of data_dir ${dataDir} (uid ${st.uid}) may send mail this way; you are uid ${uid}`);
  return null;
}

/** stdin as the header section (read whole, capped) and then the body as it streams. */
class StdinReader {
  private readonly it: AsyncIterator<Buffer | string>;
  private readonly dots: LoneDotEnd | null;
  private eof = false;

  constructor(stdin: AsyncIterable<Buffer | string>, ignoreDots: boolean) {
    this.it = stdin[Symbol.asyncIterator]();
    this.dots = ignoreDots ? null : new LoneDotEnd();
  }

  /** The next pieces of the message; null at its end (EOF, or a lone "." without -i). */
  private async next(): Promise<Buffer[] | null> {
    if (this.eof) return null;
    const r = await this.it.next();
    if (r.done) {
      this.eof = true;
      return this.dots ? this.dots.end() : null;
    }
    const chunk = typeof r.value === "string" ? Buffer.from(r.value) : r.value;
    if (!this.dots) return [chunk];
    const pieces = this.dots.feed(chunk);
    if (this.dots.ended) {
      this.eof = true;
      // The rest of stdin is not part of the message; stop reading it.
      await this.it.return?.();
    }
    return pieces;
  }

  async headerSection(): Promise<{ header: Buffer; rest: Buffer }> {
    let buf = Buffer.alloc(0);
    for (;;) {
      const end = headerSectionEnd(buf, this.eof);
      if ((end ?? buf.length) > MAX_HEADER) throw new SendmailError(EX.DATAERR, `header section longer than ${MAX_HEADER} bytes`);
      if (end !== null) return { header: buf.subarray(0, end), rest: buf.subarray(end) };
      const pieces = await this.next();
      if (pieces) buf = Buffer.concat([buf, ...pieces]);
    }
  }

  async *body(): AsyncGenerator<Buffer> {
    for (let pieces = await this.next(); pieces !== null; pieces = await this.next()) yield* pieces;
  }
}

/** Errors from the file system (and a content check) as exit statuses. */
function asSendmailError(err: unknown): SendmailError {
  if (err instanceof MailError) return new SendmailError(EX.DATAERR, err.message.toLowerCase());
  const e = err as NodeJS.ErrnoException;
  const where = e.path ? ` (${e.path})` : "";
  switch (e.code) {
    case "ENOSPC":
    case "EDQUOT":
    case "EIO":
    case "EFBIG":
      return new SendmailError(EX.IOERR, `cannot write the message: ${e.code}${where}`);
    case "EACCES":
    case "EPERM":
    case "EROFS":
    case "ENOENT":
    case "ENOTDIR":
    case "EISDIR":
    case "EEXIST":
      return new SendmailError(EX.CANTCREAT, `cannot create the message file: ${e.code}${where}`);
    default:
      if (typeof e.code === "string") return new SendmailError(EX.TEMPFAIL, `cannot drop the message, try again later: ${e.code}${where}`);
      throw err;
  }
}
