// The header section of a message as fields (RFC 5322 §2.2, §3.6), for `petrel sendmail -t`: where the
// section ends, each field's name, byte range and unfolded value, and the section without some fields
// (Bcc). Lines may end in CRLF or LF. Trusts nothing: a line that is not a field ends the section, as
// in spool/submission-headers.ts, so the body is never read as header.

const LF = 0x0a, CR = 0x0d, SP = 0x20, HTAB = 0x09, COLON = 0x3a;
/** RFC 5322 §3.6.8 ftext: printable US-ASCII except ":". */
export const isFtext = (b: number) => b >= 33 && b <= 126 && b !== COLON;

export interface HeaderField {
  /** Lower-cased name. */
  readonly name: string;
  /** Byte range of the field in the header, folded lines and the final line end included. */
  readonly start: number;
  readonly end: number;
  /** The value after the colon, unfolded (line ends removed), as UTF-8 text. */
  readonly value: string;
}

/** What a line starting at `i` is, as far as the bytes up to `limit` tell. */
function lineKind(buf: Buffer, i: number, limit: number): "field" | "continuation" | "empty" | "other" | "undecided" {
  if (i >= limit) return "undecided";
  const b = buf[i]!;
  if (b === LF) return "empty";
  if (b === CR) return i + 1 >= limit ? "undecided" : buf[i + 1] === LF ? "empty" : "other";
  if (b === SP || b === HTAB) return "continuation";
  let j = i;
  while (j < limit && isFtext(buf[j]!)) j++;
  if (j === i) return "other";
  while (j < limit && (buf[j] === SP || buf[j] === HTAB)) j++;
  if (j >= limit) return "undecided";
  return buf[j] === COLON ? "field" : "other";
}

/**
 * Where the header section of `buf` (the start of a message) ends: just after its empty line, or at
 * the start of the first line that is not a field. null when more input is needed to tell; with
 * `final` (no more input) the whole buffer is header.
 */
export function headerSectionEnd(buf: Buffer, final: boolean): number | null {
  let i = 0;
  for (;;) {
    const kind = lineKind(buf, i, buf.length);
    if (kind === "undecided") return final ? buf.length : null;
    if (kind === "other" || (kind === "continuation" && i === 0)) return i;
    const lf = buf.indexOf(LF, i);
    if (kind === "empty") return lf + 1;
    if (lf < 0) return final ? buf.length : null;
    i = lf + 1;
  }
}

/** The fields of a header section (as cut by headerSectionEnd). */
export function headerFields(header: Buffer): HeaderField[] {
  const fields: HeaderField[] = [];
  let i = 0;
  while (i < header.length) {
    if (lineKind(header, i, header.length) !== "field") break;
    const colon = header.indexOf(COLON, i);
    const name = header.subarray(i, colon).toString("latin1").trim().toLowerCase();
    let end = i;
    do {
      const lf = header.indexOf(LF, end);
      end = lf < 0 ? header.length : lf + 1;
    } while (end < header.length && (header[end] === SP || header[end] === HTAB));
    const value = header.subarray(colon + 1, end).toString("utf8").replace(/\r?\n/g, "").trim();
    fields.push({ name, start: i, end, value });
    i = end;
  }
  return fields;
}

/** The header section without the fields named in `drop` (lower-cased): sub-arrays of `header`. */
export function withoutFields(header: Buffer, fields: readonly HeaderField[], drop: ReadonlySet<string>): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (const f of fields) {
    if (!drop.has(f.name)) continue;
    if (f.start > from) out.push(header.subarray(from, f.start));
    from = f.end;
  }
  if (from < header.length) out.push(header.subarray(from));
  return out;
}
