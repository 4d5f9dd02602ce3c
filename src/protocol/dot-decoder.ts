// Decodes SMTP DATA content (RFC 5321 §4.1.1.4, §4.5.2): removes dot-stuffing and finds the end,
// which is <CRLF>.<CRLF> and nothing else. A bare LF or bare CR never ends the data and never
// starts a line for dot purposes, so a "second message" cannot be smuggled (CVE-2023-51764).
// In "normalize" mode bare CR/LF are stored as CRLF; in "reject" mode they are flagged.

const CR = 13, LF = 10, DOT = 46;

const enum S {
  LineStart, // after a real CRLF (or at the very start)
  Mid, // inside a line
  Cr, // after a CR that may start a CRLF
  Dot, // "." at a line start, withheld
  DotCr, // ".\r" at a line start, both withheld
}

export type BareMode = "normalize" | "reject";

const CRLF = Buffer.from("\r\n");
const LF_BUF = Buffer.from("\n");
const CR_BUF = Buffer.from("\r");
const DOT_BUF = Buffer.from(".");

export class DotDecoder {
  private state = S.LineStart;
  /** Bytes of decoded content produced so far. */
  size = 0;
  /** True once a bare CR or LF has been seen. */
  bareSeen = false;

  constructor(private readonly mode: BareMode = "normalize") {}

  /**
   * Feeds a chunk; decoded pieces go to `emit` (sub-arrays of `chunk` or constants, never copies).
   * Returns the number of bytes consumed; when that is less than chunk.length, or `done` is true,
   * the end-of-data line was found and the rest of the chunk belongs to the next command.
   */
  feed(chunk: Buffer, emit: (piece: Buffer) => void): { consumed: number; done: boolean } {
    const out = (b: Buffer) => {
      if (b.length) {
        this.size += b.length;
        emit(b);
      }
    };
    const normalize = this.mode === "normalize";
    let seg = 0; // start of the pending pass-through segment
    let state = this.state;
    const n = chunk.length;
    for (let i = 0; i < n; i++) {
      const c = chunk[i]!;
      if (state === S.LineStart && c === DOT) {
        out(chunk.subarray(seg, i));
        seg = i + 1;
        state = S.Dot;
        continue;
      }
      switch (state) {
        case S.LineStart:
        case S.Mid:
          if (c === CR) state = S.Cr;
          else if (c === LF) {
            // bare LF: not a line start for dot purposes
            this.bareSeen = true;
            if (normalize) {
              out(chunk.subarray(seg, i));
              out(CR_BUF);
              seg = i;
            }
            state = S.Mid;
          } else state = S.Mid;
          continue;
        case S.Cr:
          if (c === LF) {
            state = S.LineStart;
            continue;
          }
          // bare CR (already passed through); give it its LF, then treat c as mid-line
          this.bareSeen = true;
          if (normalize) {
            out(chunk.subarray(seg, i));
            out(LF_BUF);
            seg = i;
          }
          state = S.Mid;
          i--; // reprocess c
          continue;
        case S.Dot:
          if (c === CR) {
            seg = i + 1; // withhold the CR too
            state = S.DotCr;
            continue;
          }
          if (c === LF) {
            // ".<LF>": not an end; keep the dot as content, treat the LF as bare
            out(DOT_BUF);
            seg = i;
            state = S.Mid;
            i--;
            continue;
          }
          // a stuffed dot: it stays dropped; c starts the rest of the line
          seg = i;
          state = S.Mid;
          i--;
          continue;
        case S.DotCr:
          if (c === LF) {
            this.state = S.LineStart;
            return { consumed: i + 1, done: true };
          }
          // ".\r" + something: the dot was stuffing, the CR is bare
          out(CR_BUF);
          seg = i;
          state = S.Cr;
          i--;
          continue;
      }
    }
    if (state !== S.Dot && state !== S.DotCr) out(chunk.subarray(seg, n));
    this.state = state;
    return { consumed: n, done: false };
  }
}

export { CRLF };
