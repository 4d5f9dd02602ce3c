// Maildir files are stored with LF line ends, as Postfix's and Dovecot's local delivery store them
// (mutt and Python's mailbox read them as they are); POP3 adds the CRs back when it sends a message.
// LfLineEnds turns every CRLF into LF while the content streams past; a bare CR stays as it is.
const CR = 13, LF = 10;
const CR_BUF = Buffer.from("\r");

export class LfLineEnds {
  /** A CR at the end of the last chunk: dropped if the next chunk starts with LF, else written. */
  private heldCr = false;

  /** Converts one chunk; returns pieces (sub-arrays of `chunk`, never copies). */
  feed(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let start = 0;
    if (this.heldCr) {
      this.heldCr = false;
      if (chunk.length === 0) {
        this.heldCr = true;
        return out;
      }
      if (chunk[0] !== LF) out.push(CR_BUF);
    }
    for (let lf = chunk.indexOf(LF); lf >= 0; lf = chunk.indexOf(LF, lf + 1)) {
      if (lf > 0 && chunk[lf - 1] === CR) {
        if (lf - 1 > start) out.push(chunk.subarray(start, lf - 1));
        start = lf;
      }
    }
    let end = chunk.length;
    if (end > start && chunk[end - 1] === CR) {
      this.heldCr = true;
      end--;
    }
    if (end > start) out.push(chunk.subarray(start, end));
    return out;
  }

  /** The held CR, if the content ended with one. */
  end(): Buffer[] {
    if (!this.heldCr) return [];
    this.heldCr = false;
    return [CR_BUF];
  }
}

/** CRLF → LF for a whole buffer (our own header lines). */
export function toLf(text: string): Buffer {
  return Buffer.from(text.replace(/\r\n/g, "\n"));
}
