// Builds a delivery status notification (RFC 3464) as a multipart/report (RFC 6522): a text part for
// a human, a message/delivery-status part, and the original's headers (text/rfc822-headers, RET=HDRS)
// or the whole original (message/rfc822, RET=FULL; RFC 3461 §4.3), streamed with CRLF line ends.
// Trusts nothing in the remote replies, addresses or original: header text cannot break out of its
// field (CR/LF become spaces, other controls "?", long values folded), and the original is read in
// chunks, twice (a first pass learns whether its part must be declared 8bit or message/global*,
// RFC 6533), so memory does not grow with the original's size; both reads must see the same bytes
// (queue files never change). Not handled: original lines over 998 octets are passed on as they are
// (strictly "binary"), and a bounce with 8-bit parts or a UTF-8 To needs 8BITMIME/SMTPUTF8 to go out.
import crypto from "node:crypto";
import { isAscii } from "../core/address.js";
import { field, fieldText, splitLongWords, WIDTH } from "../core/header-field.js";
import { rfc5322Date } from "../spool/trace-headers.js";

export interface BounceRecipient {
  readonly finalRecipient: string;
  /** RFC 3461 ORCPT as "addr-type;address" (decoded): "rfc822;x@y". */
  readonly originalRecipient?: string;
  readonly action: "failed" | "delayed" | "delivered" | "relayed" | "expanded";
  /** RFC 3463 "class.subject.detail": "5.1.1". */
  readonly status: string;
  /** The host that answered: "mx.example.org". */
  readonly remoteMta?: string;
  /** The remote reply verbatim: "550 5.1.1 <x@y>: user unknown" (several lines may be joined by CRLF). */
  readonly diagnostic?: string;
  readonly lastAttempt?: Date;
  /** For a delayed DSN: when we give up. */
  readonly willRetryUntil?: Date;
}

export interface BounceInput {
  /** Our hostname. */
  readonly reportingMta: string;
  readonly queueId: string;
  readonly arrivalDate: Date;
  /** RFC 3461 ENVID, decoded. */
  readonly envid?: string;
  /** The original envelope sender: the bounce goes there. */
  readonly sender: string;
  readonly recipients: readonly BounceRecipient[];
  readonly ret: "HDRS" | "FULL";
  /**
   * The original message (LF or CRLF line ends as stored), a new stream on each call: it is called
   * twice. For HDRS only its header section is read (a stream of the headers alone is fine too).
   */
  readonly original: () => NodeJS.ReadableStream;
  /** The From address: "MAILER-DAEMON@host" (shown as "Mail Delivery System <MAILER-DAEMON@host>"). */
  readonly postmaster: string;
  /** The MIME boundary (tests); by default random, so no original can contain it. */
  readonly boundary?: string;
  readonly now?: Date;
  /** The Message-ID without angle brackets; by default "<random>@reportingMta". */
  readonly messageId?: string;
}

export type BounceKind = "failure" | "delay" | "success";

/** RFC 3834 §2 and RFC 3464 §2: never a bounce for a bounce; the null sender gets no report. */
export function shouldBounce(sender: string): boolean {
  return sender !== "";
}

/** What the report is about, from the recipients' actions: any failure makes it a failure report. */
export function bounceKind(recipients: readonly BounceRecipient[]): BounceKind {
  if (recipients.some((r) => r.action === "failed")) return "failure";
  if (recipients.some((r) => r.action === "delayed")) return "delay";
  return "success";
}

const SUBJECTS = {
  failure: "Undelivered Mail Returned to Sender",
  delay: "Delayed Mail (still being retried)",
  success: "Successful Mail Delivery Report",
} as const satisfies Record<BounceKind, string>;

/** A few common RFC 3463 codes in plain words, for the human part; others are shown as the code. */
const STATUS_WORDS: Readonly<Record<string, string>> = {
  "1.1": "the mailbox does not exist",
  "1.2": "the domain does not exist",
  "1.10": "the domain accepts no mail (null MX)",
  "2.1": "the mailbox is disabled",
  "2.2": "the mailbox is full",
  "3.4": "the message is too big",
  "4.4": "no route to the destination",
  "4.6": "a mail loop (the destination points back at this server)",
  "4.7": "the message was too old: delivery time expired",
  "7.1": "delivery was refused by the receiving server's policy",
};

/** Longest remote reply kept; the rest is cut with "..." (a reply is 512 octets a line, RFC 5321 §4.5.3.1.5). */
export const MAX_DIAGNOSTIC = 2000;

const STATUS = /^[245]\.\d{1,3}\.\d{1,3}$/;
// RFC 2046 §5.1.1 bchars, at most 70.
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

/** Streams the bounce (CRLF line ends) without holding the original in memory. */
export async function* bounceMessage(input: BounceInput): AsyncGenerator<Buffer> {
  if (input.recipients.length === 0) throw new RangeError("Cannot build a DSN without recipients");
  if (!shouldBounce(input.sender)) throw new RangeError("Cannot send a DSN to the null sender (never a bounce for a bounce)");
  for (const r of input.recipients) if (!STATUS.test(r.status)) throw new RangeError(`Cannot use status ${r.status} in a DSN`);
  const boundary = input.boundary ?? `${crypto.randomBytes(18).toString("base64url")}.petrel`;
  if (!BOUNDARY.test(boundary)) throw new RangeError(`Cannot use ${JSON.stringify(boundary)} as a MIME boundary`);

  const headersOnly = input.ret === "HDRS";
  const scan = new CrlfLines(headersOnly);
  for await (const _ of converted(input.original(), scan)) void _;
  const original = originalPart(headersOnly, scan);

  const kind = bounceKind(input.recipients);
  const human = humanText(input, kind);
  const status = deliveryStatus(input);
  const statusGlobal = !isAscii(status);
  const eightBit = !isAscii(human) || statusGlobal || original.cte === "8bit";
  const now = input.now ?? new Date();
  const messageId = input.messageId ?? `${crypto.randomBytes(12).toString("hex")}@${input.reportingMta}`;

  const head =
    field("From", `Mail Delivery System <${input.postmaster}>`) +
    field("To", `<${input.sender}>`) +
    field("Subject", SUBJECTS[kind]) +
    field("Date", rfc5322Date(now)) +
    field("Message-ID", `<${messageId}>`) +
    field("Auto-Submitted", "auto-replied") +
    field("MIME-Version", "1.0") +
    field("Content-Type", `multipart/report; report-type=delivery-status; boundary="${boundary}"`) +
    field("Content-Transfer-Encoding", eightBit ? "8bit" : "7bit") +
    "\r\n" +
    "This is a MIME-encapsulated message: a delivery status notification (RFC 3464).\r\n" +
    `\r\n--${boundary}\r\n` +
    field("Content-Description", "Notification") +
    field("Content-Type", `text/plain; charset=${isAscii(human) ? "us-ascii" : "utf-8"}`) +
    field("Content-Transfer-Encoding", isAscii(human) ? "7bit" : "8bit") +
    "\r\n" +
    human +
    `\r\n--${boundary}\r\n` +
    field("Content-Description", "Delivery report") +
    field("Content-Type", statusGlobal ? "message/global-delivery-status" : "message/delivery-status") +
    field("Content-Transfer-Encoding", statusGlobal ? "8bit" : "7bit") +
    "\r\n" +
    status +
    `\r\n--${boundary}\r\n` +
    field("Content-Description", original.description(kind)) +
    field("Content-Type", original.type) +
    field("Content-Transfer-Encoding", original.cte) +
    "\r\n";
  yield Buffer.from(head, "utf8");

  for await (const pieces of converted(input.original(), new CrlfLines(headersOnly))) yield pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  // The CRLF before a boundary belongs to the boundary (RFC 2046 §5.1.1): an original that ends with
  // a line end keeps it; one that ends without gets none added to its content.
  yield Buffer.from(`\r\n--${boundary}--\r\n`);
}

/** The third part's type and transfer encoding, from what the first pass saw. */
function originalPart(headersOnly: boolean, scan: CrlfLines) {
  // 8-bit header text that is valid UTF-8 is an internationalized message (RFC 6532): message/global*
  // (RFC 6533 §3, §6.3); other 8-bit text (raw Latin-1 headers, 8BITMIME bodies) is declared 8bit.
  const global = scan.eightBitHeaders && scan.headersUtf8;
  const type = headersOnly ? (global ? "message/global-headers" : "text/rfc822-headers") : global ? "message/global" : "message/rfc822";
  const cte = scan.eightBitHeaders || (!headersOnly && scan.eightBitBody) ? "8bit" : "7bit";
  const description = (kind: BounceKind) =>
    `${kind === "failure" ? "Undelivered" : kind === "delay" ? "Delayed" : "Delivered"} Message${headersOnly ? " Headers" : ""}`;
  return { type, cte, description } as const;
}

/** A stream through a CrlfLines, one output array per chunk read; stops reading (and releases the stream) once it is done. */
async function* converted(stream: NodeJS.ReadableStream, conv: CrlfLines): AsyncGenerator<Buffer[]> {
  try {
    for await (const chunk of stream) {
      const out = conv.feed(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
      if (out.length) yield out;
      if (conv.done) return;
    }
    const rest = conv.end();
    if (rest.length) yield rest;
  } finally {
    // Leaving early (HDRS, or our consumer stopped): release the file.
    const destroy = (stream as { destroy?: () => void }).destroy;
    if (typeof destroy === "function") destroy.call(stream);
  }
}

const CR = 13, LF = 10;
const CRLF = Buffer.from("\r\n");
const CR_ONLY = Buffer.from("\r");

/**
 * LF or CRLF lines → CRLF lines, chunk by chunk (a CR at a chunk's end waits to see whether an LF
 * follows; a bare CR stays). With headersOnly it stops before the empty line that ends the header
 * section (RFC 5322 §2.1). It notes on the way whether the header section and the body hold 8-bit
 * octets and whether the header section is valid UTF-8.
 */
export class CrlfLines {
  /** The last chunk ended with a CR not yet written. */
  private heldCr = false;
  /** Bytes of the current line written so far. */
  private lineLength = 0;
  private inHeaders = true;
  private finished = false;
  private readonly utf8 = new TextDecoder("utf-8", { fatal: true });
  eightBitHeaders = false;
  eightBitBody = false;
  headersUtf8 = true;

  constructor(private readonly headersOnly: boolean) {}

  get done(): boolean {
    return this.finished;
  }

  /** Converts one chunk; pieces are sub-arrays of `chunk` or shared constants, never copies. */
  feed(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    if (this.finished || chunk.length === 0) return out;
    let start = 0;
    if (this.heldCr) {
      this.heldCr = false;
      if (chunk[0] === LF) {
        this.lineEnd(out);
        start = 1;
      } else this.content(CR_ONLY, out);
    }
    while (start < chunk.length && !this.finished) {
      const lf = chunk.indexOf(LF, start);
      if (lf < 0) {
        let end = chunk.length;
        if (chunk[end - 1] === CR) {
          this.heldCr = true;
          end--;
        }
        if (end > start) this.content(chunk.subarray(start, end), out);
        break;
      }
      const end = lf > start && chunk[lf - 1] === CR ? lf - 1 : lf;
      if (end > start) this.content(chunk.subarray(start, end), out);
      this.lineEnd(out);
      start = lf + 1;
    }
    return out;
  }

  /** The end of the original: a header section without an empty line ends here too. */
  end(): Buffer[] {
    const out: Buffer[] = [];
    if (this.heldCr && !this.finished) this.content(CR_ONLY, out);
    this.heldCr = false;
    if (this.inHeaders) this.endHeaders();
    this.finished = true;
    return out;
  }

  private content(bytes: Buffer, out: Buffer[]): void {
    this.note(bytes);
    out.push(bytes);
    this.lineLength += bytes.length;
  }

  private lineEnd(out: Buffer[]): void {
    if (this.inHeaders && this.lineLength === 0) {
      // The empty line: the header section ends here.
      this.endHeaders();
      if (this.headersOnly) {
        this.finished = true;
        return;
      }
    }
    if (this.inHeaders) this.checkUtf8(CRLF);
    out.push(CRLF);
    this.lineLength = 0;
  }

  /** Header bytes in order, line ends included, so a sequence split across lines is not taken as valid. */
  private checkUtf8(bytes: Buffer): void {
    if (!this.headersUtf8) return;
    try {
      this.utf8.decode(bytes, { stream: true });
    } catch {
      this.headersUtf8 = false;
    }
  }

  private note(bytes: Buffer): void {
    if (this.inHeaders) {
      if (!this.eightBitHeaders && has8Bit(bytes)) this.eightBitHeaders = true;
      this.checkUtf8(bytes);
    } else if (!this.eightBitBody && has8Bit(bytes)) this.eightBitBody = true;
  }

  private endHeaders(): void {
    this.inHeaders = false;
    if (!this.headersUtf8) return;
    try {
      this.utf8.decode();
    } catch {
      this.headersUtf8 = false;
    }
  }
}

function has8Bit(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! >= 0x80) return true;
  return false;
}

/** A remote reply, at most MAX_DIAGNOSTIC characters: one line, or for the text part lines joined by `lineBreak`. */
function diagnosticText(s: string, lineBreak = " "): string {
  const t = s
    .split(/\r\n|[\r\n]/)
    .map((line) => fieldText(line).trim())
    .filter((line) => line !== "")
    .join(lineBreak);
  return t.length > MAX_DIAGNOSTIC ? `${t.slice(0, MAX_DIAGNOSTIC)}...` : t;
}

/** Text wrapped at WIDTH with an indent, for the human part. */
function wrap(text: string, indent = ""): string {
  const lines: string[] = [];
  let line = "";
  for (const word of splitLongWords(text).split(/ +/)) {
    if (word === "") continue;
    if (line && indent.length + line.length + 1 + word.length > WIDTH - 2) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(indent + line);
  return lines.map((l) => `${l}\r\n`).join("");
}

function statusWords(status: string): string {
  const words = STATUS_WORDS[status.slice(status.indexOf(".") + 1)];
  return words ? `${words} (${status})` : `status ${status}`;
}

/** The first part: what happened, the remote server's words and who said them, and what to do. */
function humanText(input: BounceInput, kind: BounceKind): string {
  const host = fieldText(input.reportingMta);
  let text = wrap(`This is the mail system at ${host}.`) + "\r\n";
  const attached = input.ret === "FULL" ? "your message is attached" : "the headers of your message are attached";
  text += wrap(
    kind === "failure"
      ? `Your message could not be delivered to one or more recipients. The details are below, and ${attached}.`
      : kind === "delay"
        ? "Your message has not been delivered yet to one or more recipients. This is only a warning: you need not do anything, and we keep trying."
        : "Your message was delivered as you asked to be told (a delivery notification).",
  );
  for (const r of input.recipients) {
    // Name the address the sender wrote when an alias or list turned it into another one (Postfix's "expanded from").
    const wrote = r.originalRecipient?.slice(r.originalRecipient.indexOf(";") + 1).trim();
    const to = `<${fieldText(r.finalRecipient)}>${wrote && wrote.toLowerCase() !== r.finalRecipient.toLowerCase() ? ` (sent to <${fieldText(wrote)}>)` : ""}`;
    text += "\r\n";
    switch (r.action) {
      case "failed":
        text += wrap(`Your message to ${to} could not be delivered: ${statusWords(r.status)}.`);
        break;
      case "delayed":
        text += wrap(`Your message to ${to} has not been delivered yet: ${statusWords(r.status)}.`);
        if (r.willRetryUntil) text += wrap(`We keep trying until ${rfc5322Date(r.willRetryUntil)}; you will hear from us again if it still cannot be delivered by then.`);
        break;
      case "delivered":
        text += wrap(`Your message to ${to} was delivered.`);
        break;
      case "relayed":
        text += wrap(`Your message to ${to} was passed on to a mail server that sends no delivery notifications.`);
        break;
      case "expanded":
        text += wrap(`Your message to ${to} was delivered to the members of that list or alias.`);
        break;
    }
    if (r.diagnostic) {
      const who = r.remoteMta ? `The mail server ${fieldText(r.remoteMta)} said:` : "The reason given:";
      // Each reply line on its own line, indented (so none can start with "--" and look like a boundary).
      text += wrap(who) + diagnosticText(r.diagnostic, "\n").split("\n").map((line) => wrap(line, "    ")).join("");
    }
  }
  text += "\r\n";
  if (kind === "failure")
    text += wrap(
      "What you can do: check the address for typing mistakes and send the message again. If the address is right, the receiving server gave the reason above; its postmaster or the recipient can help you by another way.",
    );
  else if (kind === "delay") text += wrap("What you can do: nothing for now. If you need the message to arrive soon, send it another way.");
  text += "\r\n" + wrap("This message was sent automatically; replies to it are not read.");
  return text;
}

/** The second part (RFC 3464 §2.2, §2.3): a per-message block, then one block per recipient. */
function deliveryStatus(input: BounceInput): string {
  let text = "";
  if (input.envid !== undefined) text += field("Original-Envelope-Id", input.envid);
  text += field("Reporting-MTA", `dns; ${input.reportingMta}`);
  text += field("X-Petrel-Queue-ID", input.queueId);
  text += field("Arrival-Date", rfc5322Date(input.arrivalDate));
  for (const r of input.recipients) {
    text += "\r\n";
    if (r.originalRecipient) text += field("Original-Recipient", r.originalRecipient);
    // RFC 6533 §3: an address that is not ASCII has the type utf-8 (in message/global-delivery-status).
    text += field("Final-Recipient", `${isAscii(r.finalRecipient) ? "rfc822" : "utf-8"}; ${r.finalRecipient}`);
    text += field("Action", r.action);
    text += field("Status", r.status);
    if (r.remoteMta) text += field("Remote-MTA", `dns; ${r.remoteMta}`);
    if (r.diagnostic) text += field("Diagnostic-Code", `smtp; ${diagnosticText(r.diagnostic)}`);
    if (r.lastAttempt) text += field("Last-Attempt-Date", rfc5322Date(r.lastAttempt));
    if (r.willRetryUntil) text += field("Will-Retry-Until", rfc5322Date(r.willRetryUntil));
  }
  return text;
}
