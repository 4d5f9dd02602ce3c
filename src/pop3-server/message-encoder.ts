// Turns a stored message into the body of a POP3 multi-line response (RFC 1939 §3): bare LF becomes
// CRLF, a line starting with "." gets a second ".", and the end is ".CRLF" (after an added CRLF when
// the message does not end with one). Works on chunks of any size; TOP (RFC 1939 §7) stops early.
const CR = 13, LF = 10, DOT = 46;
const CRLF = Buffer.from("\r\n");
const LF_ONLY = Buffer.from("\n");
const EXTRA_DOT = Buffer.from(".");
const END = Buffer.from(".\r\n");
const CRLF_END = Buffer.from("\r\n.\r\n");

export class MessageEncoder {
  private atLineStart = true;
  /** Last input byte seen, so a CR at the end of one chunk pairs with an LF at the start of the next. */
  private lastByte = -1;
  /** Input bytes of the current line so far (a trailing CR included). */
  private lineLength = 0;
  private inHeaders = true;
  private bodyLinesLeft: number | null;
  private finished = false;

  /** bodyLines: null for RETR (everything); for TOP n m, the m lines of body after the headers. */
  constructor(bodyLines: number | null = null) {
    this.bodyLinesLeft = bodyLines;
  }

  /** True once TOP has what it needs: the caller may stop reading the file. */
  get done(): boolean {
    return this.finished;
  }

  /** Encodes one chunk; the result may be empty. Pieces of `chunk` are shared, not copied. */
  feed(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    let i = 0;
    while (i < chunk.length && !this.finished) {
      if (this.atLineStart) {
        if (chunk[i] === DOT) out.push(EXTRA_DOT);
        this.atLineStart = false;
      }
      const lf = chunk.indexOf(LF, i);
      if (lf < 0) {
        out.push(chunk.subarray(i));
        this.lineLength += chunk.length - i;
        this.lastByte = chunk[chunk.length - 1]!;
        break;
      }
      const crBefore = lf > i ? chunk[lf - 1] === CR : this.lastByte === CR && this.lineLength > 0;
      this.lineLength += lf - i;
      if (lf > i) out.push(chunk.subarray(i, lf));
      // The CR of a CRLF is already out (in this chunk or the last one); a bare LF gets one.
      out.push(crBefore ? LF_ONLY : CRLF);
      this.endLine(this.lineLength === (crBefore ? 1 : 0));
      this.lastByte = LF;
      i = lf + 1;
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /** The end of the response: ".CRLF", with a CRLF before it when the last line had none. */
  end(): Buffer {
    this.finished = true;
    return this.atLineStart ? END : CRLF_END;
  }

  private endLine(empty: boolean): void {
    this.atLineStart = true;
    this.lineLength = 0;
    if (this.inHeaders) {
      if (empty) this.inHeaders = false;
    } else if (this.bodyLinesLeft !== null) {
      this.bodyLinesLeft--;
    }
    if (!this.inHeaders && this.bodyLinesLeft === 0) this.finished = true;
  }
}
