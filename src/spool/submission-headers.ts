// Adds Date and Message-ID (and, for `petrel sendmail`, From) to a submitted message that lacks them
// (RFC 6409 §8.1-§8.3), while the content streams: it reads only the header section (RFC 5322 §2.2, §3.6), then passes pieces through
// untouched. Trusts nothing in the content; holds back at most MAX_CLASSIFY bytes of one line.
import { isFtext } from "./header-fields.js";
import { headerText } from "../core/header-field.js";
import { rfc5322Date } from "./trace-headers.js";

const LF = 0x0a, CR = 0x0d, SP = 0x20, HTAB = 0x09, COLON = 0x3a;

/**
 * Bytes of a line read to tell what it is. A field name of ours ("message-id") is far shorter; a line
 * still undecided after this many bytes is a field we do not look for (it stays in the header).
 */
export const MAX_CLASSIFY = 128;


/** What the current header line is, as far as its first bytes tell. */
type LineState =
  /** Nothing read yet. */
  | "start"
  /** A CR at the start: an empty line if LF follows. */
  | "cr"
  /** Inside a field name. */
  | "name"
  /** White space after a name (RFC 5322 §4.5 obsolete syntax allows it before the colon). */
  | "wsp"
  /** Decided (a field, or a folded continuation): skip to the line's LF. */
  | "skip";

export interface SubmissionHeadersOptions {
  readonly hostname: string;
  readonly now: () => Date;
  /** The part before "@" of a new Message-ID: unique, made of dot-atom text (RFC 5322 §3.6.4). */
  readonly messageId: () => string;
  /** The value of a From field to add when the message has none (sendmail); undefined adds no From. */
  readonly from?: string;
  /** Line end of added fields: CRLF (SMTP) unless the content uses LF (sendmail's stdin). */
  readonly lineEnd?: "\r\n" | "\n";
}

export class SubmissionHeaders {
  private phase: "header" | "body" = "header";
  private line: LineState = "start";
  /** Lower-cased field name so far (ASCII only, capped). */
  private name = "";
  /** Bytes read of the current undecided line. */
  private lineLength = 0;
  /** The undecided line's bytes from earlier pieces: sub-arrays, never copies (pieces are not modified). */
  private held: Buffer[] = [];
  private sawDate = false;
  private sawMessageId = false;
  private sawFrom = false;
  private readonly eol: Buffer;
  /** The last byte passed on (to add a line end before headers appended at the end). */
  private lastByte = LF;

  constructor(private readonly opts: SubmissionHeadersOptions) {
    this.eol = Buffer.from(opts.lineEnd ?? "\r\n");
  }

  /** Pieces of the message as received (CRLF lines, unstuffed); returns the pieces to write (same or with headers inserted). */
  feed(pieces: readonly Buffer[]): readonly Buffer[] {
    if (this.phase === "body") return pieces;
    const out: Buffer[] = [];
    for (let k = 0; k < pieces.length; k++) {
      if (this.scan(pieces[k]!, out) === "body") {
        for (k++; k < pieces.length; k++) out.push(pieces[k]!);
      }
    }
    return out;
  }

  /** End of content: what must still be written (e.g. when the message had no blank line). */
  end(): Buffer[] {
    if (this.phase === "body") return [];
    this.phase = "body";
    const held = this.held;
    this.held = [];
    const missing = this.missing();
    if (missing === null) return held;
    // An unfinished line that was never recognised as a field: the headers go before it, as for any non-field line.
    if (this.line !== "skip" && held.length) return [missing, this.eol, ...held];
    return this.lastByte === LF ? [missing] : [this.eol, missing];
  }

  /** Reads one piece of the header section; pushes what may be written now to `out`. */
  private scan(p: Buffer, out: Buffer[]): "header" | "body" {
    // Where the current undecided line starts in p (0 when it started in an earlier piece).
    let lineStart = 0;
    for (let i = 0; i < p.length; i++) {
      if (this.line === "skip") {
        const lf = p.indexOf(LF, i);
        if (lf < 0) break;
        this.newLine();
        i = lf;
        lineStart = lf + 1;
        continue;
      }
      const verdict = this.classify(p[i]!);
      if (verdict === "undecided") continue;
      if (verdict === "field") {
        this.flushHeld(out);
        this.line = "skip";
        continue;
      }
      // The header section ends at this line: before an empty line, the headers alone; before any
      // other line, the headers and an empty line, so that line stays the body it already was.
      if (lineStart > 0) out.push(p.subarray(0, lineStart));
      const missing = this.missing();
      if (missing) out.push(missing, ...(verdict === "empty" ? [] : [this.eol]));
      this.flushHeld(out);
      out.push(p.subarray(lineStart));
      return (this.phase = "body");
    }
    if (p.length === 0) return "header";
    // Everything before an undecided line is written; the line itself waits for its verdict.
    if (this.line === "skip" || this.line === "start") out.push(p);
    else {
      if (lineStart > 0) out.push(p.subarray(0, lineStart));
      this.held.push(p.subarray(lineStart));
    }
    this.lastByte = p[p.length - 1]!;
    return "header";
  }

  /** Takes one byte of an undecided line. */
  private classify(b: number): "undecided" | "field" | "empty" | "other" {
    this.lineLength++;
    switch (this.line) {
      case "start":
        if (b === LF) return "empty";
        if (b === CR) return (this.line = "cr"), "undecided";
        if (b === SP || b === HTAB) return "field"; // a folded continuation of the field before
        if (isFtext(b)) return (this.line = "name"), this.addName(b);
        return "other";
      case "cr":
        return b === LF ? "empty" : "other";
      case "name":
        if (isFtext(b)) return this.addName(b);
        if (b === COLON) return this.fieldEnds();
        if (b === SP || b === HTAB) return (this.line = "wsp"), this.capped();
        return "other";
      case "wsp":
        if (b === COLON) return this.fieldEnds();
        if (b === SP || b === HTAB) return this.capped();
        return "other";
      case "skip":
        return "field";
    }
  }

  private addName(b: number): "undecided" | "field" {
    if (this.name.length < MAX_CLASSIFY) this.name += String.fromCharCode(b >= 0x41 && b <= 0x5a ? b + 32 : b);
    return this.capped();
  }

  /** A line undecided after MAX_CLASSIFY bytes is a field we do not look for: held bytes stay bounded. */
  private capped(): "undecided" | "field" {
    return this.lineLength >= MAX_CLASSIFY ? "field" : "undecided";
  }

  private fieldEnds(): "field" {
    if (this.name === "date") this.sawDate = true;
    else if (this.name === "message-id") this.sawMessageId = true;
    else if (this.name === "from") this.sawFrom = true;
    return "field";
  }

  private newLine(): void {
    this.line = "start";
    this.name = "";
    this.lineLength = 0;
  }

  private flushHeld(out: Buffer[]): void {
    if (this.held.length) out.push(...this.held);
    this.held = [];
  }

  /** The header fields to add, or null when the message has them all. */
  private missing(): Buffer | null {
    const eol = this.opts.lineEnd ?? "\r\n";
    let text = "";
    if (this.opts.from !== undefined && !this.sawFrom) text += `From: ${headerText(this.opts.from)}${eol}`;
    if (!this.sawDate) text += `Date: ${rfc5322Date(this.opts.now())}${eol}`;
    if (!this.sawMessageId) text += `Message-ID: <${headerText(this.opts.messageId())}@${headerText(this.opts.hostname)}>${eol}`;
    return text === "" ? null : Buffer.from(text, "utf8");
  }
}
