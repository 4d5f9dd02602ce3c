// DKIM "relaxed" canonicalization (RFC 6376 §3.4.2 header, §3.4.4 body) for the signer. The body is
// hashed as it streams, byte by byte with a fixed 64 KB output buffer: memory stays constant whatever
// the size of the message or the length of its lines. Input is content with CRLF line ends (a CR not
// followed by LF is an ordinary character, as RFC 6376 treats it). Trusts nothing about the bytes.
import crypto from "node:crypto";

const CR = 0x0d, LF = 0x0a, SP = 0x20, HTAB = 0x09;
const OUT_SIZE = 64 * 1024;

/**
 * The SHA-256 of a body in relaxed canonical form: every run of WSP in a line becomes one SP, WSP at a
 * line's end goes, empty lines at the end go, and a non-empty body ends in exactly one CRLF; an empty
 * body hashes as no octets (RFC 6376 §3.4.4, erratum 3951).
 */
export class RelaxedBodyHash {
  private readonly hash = crypto.createHash("sha256");
  private readonly out = Buffer.allocUnsafe(OUT_SIZE);
  private used = 0;
  /** Line ends seen after the last content: written only once more content follows. */
  private pendingLineEnds = 0;
  /** WSP seen since the last content of this line: one SP if content follows on the line. */
  private pendingSpace = false;
  /** The previous byte was a CR (a line end if LF follows). */
  private pendingCr = false;
  private anyContent = false;

  update(chunk: Buffer): void {
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.pendingCr) {
        this.pendingCr = false;
        if (b === LF) {
          this.pendingSpace = false;
          this.pendingLineEnds++;
          continue;
        }
        this.content(CR);
      }
      if (b === CR) this.pendingCr = true;
      else if (b === SP || b === HTAB) this.pendingSpace = true;
      else this.content(b);
    }
  }

  /** The base64 body hash (the bh= value). */
  digest(): string {
    if (this.pendingCr) this.content(CR);
    if (this.anyContent) {
      this.put(CR);
      this.put(LF);
    }
    this.hash.update(this.out.subarray(0, this.used));
    this.used = 0;
    return this.hash.digest("base64");
  }

  private content(b: number): void {
    for (; this.pendingLineEnds > 0; this.pendingLineEnds--) {
      this.put(CR);
      this.put(LF);
    }
    if (this.pendingSpace) {
      this.put(SP);
      this.pendingSpace = false;
    }
    this.put(b);
    this.anyContent = true;
  }

  private put(b: number): void {
    if (this.used === OUT_SIZE) {
      this.hash.update(this.out);
      this.used = 0;
    }
    this.out[this.used++] = b;
  }
}

/**
 * One header field in relaxed form (RFC 6376 §3.4.2), without its final CRLF: the name lowercased
 * (ASCII only), the value unfolded, runs of WSP made one SP, WSP around the colon and at the end removed.
 * `field` is the field as it stands in the message, `name:value` with folded lines, as latin1 text
 * (one character per octet, so UTF-8 values pass through unchanged).
 */
export function relaxedHeaderField(field: string): string {
  const colon = field.indexOf(":");
  const name = field.slice(0, colon).replace(/[ \t]+$/, "").replace(/[A-Z]/g, (c) => c.toLowerCase());
  const value = field
    .slice(colon + 1)
    .replace(/\r?\n/g, "")
    .replace(/[ \t]+/g, " ")
    .replace(/^ | $/g, "");
  return `${name}:${value}`;
}
