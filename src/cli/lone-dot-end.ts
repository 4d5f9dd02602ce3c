// sendmail's old rule for a message on stdin: without -i (or -oi), a line holding a single "." ends the
// message and the rest of the input is ignored. No dot-unstuffing: ".." stays "..", as in sendmail and
// Postfix. Works on chunks split anywhere; "." or ".\r" at a line start is held until the next byte.
const LF = 0x0a, CR = 0x0d, DOT = 0x2e;

export class LoneDotEnd {
  private atLineStart = true;
  /** "." or ".\r" seen at a line start at the end of the last chunk. */
  private held: Buffer | null = null;
  private done = false;

  /** True once the lone "." was seen: feed() returns nothing more. */
  get ended(): boolean {
    return this.done;
  }

  /** The part of `chunk` that belongs to the message (sub-arrays; a copy only after a held "."). */
  feed(chunk: Buffer): Buffer[] {
    if (this.done || chunk.length === 0) return [];
    const buf = this.held ? Buffer.concat([this.held, chunk]) : chunk;
    this.held = null;
    let i = this.atLineStart ? 0 : buf.indexOf(LF) + 1;
    while (i > 0 || (i === 0 && this.atLineStart)) {
      if (i >= buf.length) break;
      if (buf[i] === DOT) {
        const next = buf[i + 1];
        if (next === LF || (next === CR && buf[i + 2] === LF)) {
          this.done = true;
          return i > 0 ? [buf.subarray(0, i)] : [];
        }
        if (next === undefined || (next === CR && i + 2 >= buf.length)) {
          this.held = Buffer.from(buf.subarray(i));
          this.atLineStart = true;
          return i > 0 ? [buf.subarray(0, i)] : [];
        }
      }
      const lf = buf.indexOf(LF, i);
      if (lf < 0) {
        i = -1;
        break;
      }
      i = lf + 1;
    }
    this.atLineStart = buf[buf.length - 1] === LF;
    return [buf];
  }

  /** End of input: a held "." is the end line (dropped); a held ".\r" is also taken as it. */
  end(): Buffer[] {
    this.held = null;
    return [];
  }
}
