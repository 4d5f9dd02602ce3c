// Text from the wire, checked before any of it is used: strict UTF-8 decoding of a command line
// (RFC 3629; no lossy replacement), the control-character check, and a printable form of client
// words for echoing in replies. Shared by the SMTP and POP3 sessions; trusts nothing it is given.

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

/** The line as text when it is valid UTF-8; null when any byte sequence is not (RFC 3629 §3). */
export function decodeUtf8(line: Uint8Array): string | null {
  try {
    return STRICT_UTF8.decode(line);
  } catch {
    return null;
  }
}

/** True when a command line holds a control character other than TAB (never part of a command). */
export function hasControlChars(line: string): boolean {
  return /[\x00-\x08\x0a-\x1f\x7f]/.test(line);
}

/** A client-given word made safe to echo in a reply: printable ASCII only, at most `max` characters. */
export function printable(text: string, max = 64): string {
  const clean = text.replace(/[^\x20-\x7e]/g, "?");
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}
