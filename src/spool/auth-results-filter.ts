// Removes every incoming Authentication-Results field whose authserv-id is this host's name (RFC 8601
// §5: a claim made in our name before the message reached us is forged), while the header streams in.
// Case-insensitive; folded fields, comments before the id and a quoted-string id are handled. Trusts
// nothing in the content: it holds back at most MAX_HELD bytes of one undecided field (a longer one is
// not ours and passes), and reads only the header section (RFC 5322 §2.2): the body passes untouched.
// Also drops fields named in dropNames whatever they say: the spool passes the X-Spam-* verdict fields,
// which only Petrel's own checks may write (as SpamAssassin removes incoming X-Spam-* headers).
import { isFtext } from "./header-fields.js";

const LF = 0x0a, CR = 0x0d, SP = 0x20, HTAB = 0x09, COLON = 0x3a;
const OPEN = 0x28, CLOSE = 0x29, QUOTE = 0x22, BACKSLASH = 0x5c;
const FIELD = "authentication-results";

/** Bytes of one field held back until its authserv-id is known; past this it is not ours. */
export const MAX_HELD = 2048;
/** A host name has at most 255 octets (RFC 1035 §2.3.4); a longer id is not ours. */
const MAX_ID = 255;

/** Where the current header line is. */
type LineState =
  /** Nothing read of the line yet. */
  | "start"
  /** A CR at the start: an empty line if LF follows. */
  | "cr"
  /** Inside a field name (held). */
  | "name"
  /** White space after a name, before the colon (RFC 5322 §4.5 obsolete syntax). */
  | "wsp"
  /** Inside an Authentication-Results value, before its authserv-id is decided (held). */
  | "id"
  /** A field kept: passes up to the end of its line. */
  | "pass"
  /** A field of ours: dropped up to the end of its line (and its continuation lines). */
  | "drop";

/** Where the authserv-id parse is (RFC 8601 §2.2: [CFWS] authserv-id, a token or quoted-string). */
type IdState = "cfws" | "comment" | "comment-pair" | "fold" | "token" | "quoted" | "quoted-pair";

/** What happens to bytes now: written, held until their field is decided, or dropped. */
type Mode = "emit" | "hold" | "skip";

/** RFC 2045 tspecials and controls end a token. */
const isTokenByte = (b: number) => b > SP && b !== 0x7f && !"()<>@,;:\\\"/[]?=".includes(String.fromCharCode(b));

export class AuthResultsFilter {
  private phase: "header" | "body" = "header";
  private line: LineState = "start";
  private idState: IdState = "cfws";
  /** The sub-state a folded line returns to (white space after the LF). */
  private resume: IdState = "cfws";
  private commentDepth = 0;
  /** The line before was part of a dropped field (its continuation lines are dropped too). */
  private dropping = false;
  private name = "";
  private nameLength = 0;
  private id = "";
  private mode: Mode = "emit";
  /** Where the current mode's bytes start in the piece being read. */
  private segStart = 0;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private readonly ours: string;
  private readonly dropNames: ReadonlySet<string>;

  /** dropNames: fields removed whatever they say (lower case, at most 22 octets), e.g. forged X-Spam-Status. */
  constructor(hostname: string, dropNames: readonly string[] = []) {
    this.ours = hostname.toLowerCase().replace(/\.$/, "");
    this.dropNames = new Set(dropNames);
  }

  /** Bytes held back now (for tests: never more than MAX_HELD). */
  get holding(): number {
    return this.heldBytes;
  }

  /** Pieces of the message as received; returns the pieces to write (sub-arrays, never copies). */
  feed(pieces: readonly Buffer[]): Buffer[] | readonly Buffer[] {
    if (this.phase === "body") return pieces;
    const out: Buffer[] = [];
    for (let k = 0; k < pieces.length; k++) {
      if (this.scan(pieces[k]!, out) === "body") for (k++; k < pieces.length; k++) out.push(pieces[k]!);
    }
    return out;
  }

  /** End of content: a field still undecided is decided on what was read. */
  end(): Buffer[] {
    if (this.phase === "body" || this.heldBytes === 0) return [];
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    this.phase = "body";
    return this.line === "id" && this.isOurs() ? [] : held;
  }

  private scan(p: Buffer, out: Buffer[]): "header" | "body" {
    this.segStart = 0;
    let i = 0;
    while (i < p.length) {
      if (this.line === "pass" || this.line === "drop") {
        const lf = p.indexOf(LF, i);
        if (lf < 0) break;
        this.dropping = this.line === "drop";
        this.line = "start";
        i = lf + 1;
        continue;
      }
      if (this.mode === "hold" && this.heldBytes + (i - this.segStart) >= MAX_HELD) {
        // Too long to be a claim of ours: the field passes. A name or its white space is still read
        // (field or body?); a value passes to the end of its line.
        this.release(p, i, out);
        if (this.line === "id") {
          this.line = this.idState === "fold" ? "start" : "pass";
          continue;
        }
      }
      const b = p[i]!;
      switch (this.line) {
        case "start":
          if (b === LF) return this.bodyFrom(p, i, out);
          if (b === CR) {
            this.switchTo("emit", p, i, out);
            this.line = "cr";
          } else if (b === SP || b === HTAB) {
            this.switchTo(this.dropping ? "skip" : "emit", p, i, out);
            this.line = this.dropping ? "drop" : "pass";
            continue;
          } else if (isFtext(b)) {
            this.switchTo("hold", p, i, out);
            this.line = "name";
            this.name = "";
            this.nameLength = 0;
            this.addName(b);
          } else return this.bodyFrom(p, i, out);
          this.dropping = false;
          break;
        case "cr":
          return this.bodyFrom(p, i, out);
        case "name":
          if (isFtext(b)) this.addName(b);
          else if (b === COLON) this.fieldName(p, i, out);
          else if (b === SP || b === HTAB) this.line = "wsp";
          else return this.bodyFrom(p, i, out);
          break;
        case "wsp":
          if (b === COLON) this.fieldName(p, i, out);
          else if (b !== SP && b !== HTAB) return this.bodyFrom(p, i, out);
          break;
        case "id":
          if (this.readId(b)) {
            // Decided at this byte, which is read again as part of the line it belongs to: after a
            // line end without white space, a new line; else the rest of the kept or dropped field.
            const ended = this.idState === "fold";
            const ours = this.decide(p, i, out);
            this.line = ended ? "start" : ours ? "drop" : "pass";
            this.dropping = ours;
            continue;
          }
          break;
      }
      i++;
    }
    this.close(p, p.length, out);
    return "header";
  }

  /** One byte of a field name: only its first bytes are kept (ours is short); a long name is not ours. */
  private addName(b: number): void {
    this.nameLength++;
    if (this.name.length <= FIELD.length) this.name += String.fromCharCode(b >= 0x41 && b <= 0x5a ? b + 32 : b);
  }

  private fieldName(p: Buffer, i: number, out: Buffer[]): void {
    if (this.nameLength === this.name.length && this.dropNames.has(this.name)) {
      // Dropped with its continuation lines, like an Authentication-Results of ours.
      this.close(p, i, out);
      this.held = [];
      this.heldBytes = 0;
      this.mode = "skip";
      this.line = "drop";
      this.dropping = true;
      return;
    }
    if (this.name === FIELD) {
      this.line = "id";
      this.idState = "cfws";
      this.id = "";
      return;
    }
    this.release(p, i, out);
    this.line = "pass";
  }

  /**
   * One byte of an Authentication-Results value before its id is known. True when the field is
   * decided (the decision is in `mode` after decide()); false to read on.
   */
  private readId(b: number): boolean {
    switch (this.idState) {
      case "fold":
        // After a line end: white space continues the field; anything else starts a new line.
        if (b === SP || b === HTAB) {
          this.idState = this.resume;
          return false;
        }
        return true;
      case "cfws":
        if (b === SP || b === HTAB || b === CR) return false;
        if (b === LF) return this.fold("cfws");
        if (b === OPEN) {
          this.idState = "comment";
          this.commentDepth = 1;
          return false;
        }
        if (b === QUOTE) {
          this.idState = "quoted";
          return false;
        }
        if (isTokenByte(b)) {
          this.idState = "token";
          this.addId(b);
          return false;
        }
        return true; // ";" or garbage: no id, so not a claim of ours
      case "comment":
        if (b === BACKSLASH) this.idState = "comment-pair";
        else if (b === OPEN) this.commentDepth++;
        else if (b === CLOSE && --this.commentDepth === 0) this.idState = "cfws";
        else if (b === LF) return this.fold("comment");
        return false;
      case "comment-pair":
        this.idState = "comment";
        return false;
      case "token":
        if (isTokenByte(b)) {
          this.addId(b);
          return this.id.length > MAX_ID;
        }
        return true;
      case "quoted":
        if (b === BACKSLASH) this.idState = "quoted-pair";
        else if (b === QUOTE) return true;
        else if (b === LF) return this.fold("quoted");
        else if (b !== CR) this.addId(b);
        return this.id.length > MAX_ID;
      case "quoted-pair":
        this.idState = "quoted";
        this.addId(b);
        return false;
    }
  }

  private fold(resume: IdState): boolean {
    this.resume = resume;
    this.idState = "fold";
    return false;
  }

  private addId(b: number): void {
    this.id += String.fromCharCode(b >= 0x41 && b <= 0x5a ? b + 32 : b);
  }

  /** The id read so far names this host. */
  private isOurs(): boolean {
    return this.id.length <= MAX_ID && this.id.replace(/\.$/, "") === this.ours;
  }

  /** Decides the held field at byte i: dropped when its id is ours (true), else written. */
  private decide(p: Buffer, i: number, out: Buffer[]): boolean {
    if (!this.isOurs()) {
      this.release(p, i, out);
      return false;
    }
    this.close(p, i, out);
    this.held = [];
    this.heldBytes = 0;
    this.mode = "skip";
    return true;
  }

  /** The header section ends at byte i: everything from there is written. */
  private bodyFrom(p: Buffer, i: number, out: Buffer[]): "body" {
    this.release(p, i, out);
    out.push(p.subarray(i));
    return (this.phase = "body");
  }

  /** Ends the current segment at i: written, held or dropped by the mode it was read in. */
  private close(p: Buffer, i: number, out: Buffer[]): void {
    if (i > this.segStart) {
      const seg = p.subarray(this.segStart, i);
      if (this.mode === "emit") out.push(seg);
      else if (this.mode === "hold") {
        this.held.push(seg);
        this.heldBytes += seg.length;
      }
    }
    this.segStart = i;
  }

  private switchTo(mode: Mode, p: Buffer, i: number, out: Buffer[]): void {
    this.close(p, i, out);
    this.mode = mode;
  }

  /** The held field is kept: written, and what follows is written as it comes. */
  private release(p: Buffer, i: number, out: Buffer[]): void {
    this.close(p, i, out);
    if (this.held.length) out.push(...this.held);
    this.held = [];
    this.heldBytes = 0;
    this.mode = "emit";
  }
}
