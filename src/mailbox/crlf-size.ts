// Counts the size a message has with CRLF line ends: its octets plus one for every bare LF (which
// becomes CRLF). Delivery records it in the Maildir name as ",W="; POP3 reports it as the octets RETR
// sends (before byte-stuffing and the final ".CRLF"). Works on chunks of any size.
const CR = 13, LF = 10;

export class CrlfSizeCounter {
  private total = 0;
  /** Bare LFs seen so far: what the CRLF size adds to the plain size. */
  bareLf = 0;
  private lastByte = -1;

  feed(chunk: Buffer): void {
    this.total += chunk.length;
    for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, i + 1)) {
      const before = i > 0 ? chunk[i - 1] : this.lastByte;
      if (before !== CR) this.bareLf++;
    }
    if (chunk.length) this.lastByte = chunk[chunk.length - 1]!;
  }

  get size(): number {
    return this.total + this.bareLf;
  }
}
