// SMTP replies as data: a code, an optional RFC 3463 enhanced status code, and text lines.
// Formatting follows RFC 5321 §4.2 (multi-line "code-text", last line "code text").
// The enhanced code is repeated on every line, as RFC 2034 §4 requires.

export interface Reply {
  readonly code: number;
  /** RFC 3463 "class.subject.detail"; omitted on the greeting, EHLO/HELO and 354 (RFC 2034). */
  readonly enhanced?: string;
  readonly lines: readonly string[];
}

export function reply(code: number, enhanced: string | undefined, ...lines: string[]): Reply {
  if (lines.length === 0) lines = [""];
  return enhanced === undefined ? { code, lines } : { code, enhanced, lines };
}

export function formatReply(r: Reply): string {
  return [...replyLines(r)].join("");
}

/** The reply's wire lines one by one, CRLF included: for answers long enough to stream. */
export function* replyLines(r: Reply): Generator<string> {
  const last = r.lines.length - 1;
  for (let i = 0; i <= last; i++) {
    const line = r.lines[i]!;
    const text = r.enhanced ? (line ? `${r.enhanced} ${line}` : r.enhanced) : line;
    yield `${r.code}${i === last ? " " : "-"}${text}\r\n`;
  }
}

/** First line of a reply as one string, for logs and bounce texts. */
export function replyText(r: Reply): string {
  return `${r.code}${r.enhanced ? " " + r.enhanced : ""} ${r.lines.join(" / ")}`;
}

export function isPositive(r: Reply): boolean {
  return r.code >= 200 && r.code < 400;
}
