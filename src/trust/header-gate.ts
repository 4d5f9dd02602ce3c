// Holds back the header section of a message (RFC 5322 §2.1: up to the first empty line) until it is
// complete, so the DKIM verifier gets it bounded and trimmed: at most `maxOctets` (a longer one is
// refused by the caller), and at most `maxSignatures` DKIM-Signature fields, the topmost (RFC 6376 §6.1:
// a verifier MAY limit how many it tries; each costs a body hash, a key lookup and an RSA operation).
// The body passes through untouched. Trusts nothing in the content; CRLF line ends as the spool feeds them.

export type GateResult =
  /** Pieces to hand on now (the trimmed header section once complete, then body pieces as they come). */
  | { readonly kind: "pass"; readonly pieces: readonly Buffer[] }
  | { readonly kind: "too large" };

const CRLFCRLF = Buffer.from("\r\n\r\n");

export class HeaderGate {
  private held: Buffer[] = [];
  private heldOctets = 0;
  /** The last (up to) 3 octets before the next piece; the content starts as if after a CRLF. */
  private tail = Buffer.from("\r\n");
  private done = false;
  private failed = false;
  /** DKIM-Signature fields left out of what was handed on. */
  droppedSignatures = 0;

  constructor(
    private readonly maxOctets: number,
    private readonly maxSignatures: number,
  ) {}

  add(chunk: Buffer): GateResult {
    if (this.failed) return { kind: "too large" };
    if (this.done) return { kind: "pass", pieces: [chunk] };
    // Search from the 3 octets before this piece (the virtual CRLF first: an empty first line ends the section).
    const window = Buffer.concat([this.tail, chunk.subarray(0, this.maxOctets + 4)]);
    const at = window.indexOf(CRLFCRLF);
    const end = at < 0 ? -1 : this.heldOctets - this.tail.length + at + 4; // header section length, empty line included
    if (end < 0 || end > this.maxOctets) {
      this.heldOctets += chunk.length;
      if (this.heldOctets > this.maxOctets) {
        this.failed = true;
        this.held = [];
        return { kind: "too large" };
      }
      this.held.push(chunk);
      this.tail = Buffer.from(Buffer.concat([this.tail, chunk.subarray(-3)]).subarray(-3));
      return { kind: "pass", pieces: [] };
    }
    const splitAt = end - this.heldOctets; // may be negative when the empty line began in an earlier piece
    const section = Buffer.concat([...this.held, chunk]).subarray(0, end);
    const rest = chunk.subarray(Math.max(0, splitAt));
    this.held = [];
    this.done = true;
    const pieces = [this.trim(section)];
    if (rest.length > 0) pieces.push(rest);
    return { kind: "pass", pieces };
  }

  /** End of content: what is still held (a message that is all header, with no empty line). */
  end(): readonly Buffer[] {
    if (this.done || this.failed || this.held.length === 0) return [];
    this.done = true;
    const section = Buffer.concat(this.held);
    this.held = [];
    return [this.trim(section)];
  }

  private trim(section: Buffer): Buffer {
    const fields = splitFields(section);
    let signatures = 0;
    const kept = fields.filter((f) => {
      if (!/^dkim-signature[ \t]*:/i.test(f.toString("latin1", 0, 32))) return true;
      signatures++;
      return signatures <= this.maxSignatures;
    });
    this.droppedSignatures = signatures - Math.min(signatures, this.maxSignatures);
    return this.droppedSignatures === 0 ? section : Buffer.concat(kept);
  }
}

/** The header fields with their folded continuation lines, CRLFs included; the empty line is the last "field". */
function splitFields(section: Buffer): Buffer[] {
  const fields: Buffer[] = [];
  let start = 0;
  let at = 0;
  while (at < section.length) {
    const eol = section.indexOf("\r\n", at);
    const next = eol < 0 ? section.length : eol + 2;
    const c = section[next];
    // A line starting with SP or HTAB continues the field (RFC 5322 §2.2.3).
    if (next >= section.length || (c !== 0x20 && c !== 0x09)) {
      fields.push(section.subarray(start, next));
      start = next;
    }
    at = next;
  }
  return fields;
}
