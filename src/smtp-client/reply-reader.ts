// Reads SMTP replies from the server side of the wire (RFC 5321 §4.2): "code-text" continuation
// lines, a last "code text" line, the RFC 3463 enhanced code (RFC 2034 §4) split off when present.
// Trusts nothing: lines are bounded, every line must carry the same three-digit code.
import type { Reply } from "../core/reply.js";
import type { SocketReader } from "../protocol/socket-reader.js";
import { ClientError } from "./client-error.js";

/** RFC 5321 §4.5.3.1.5 says 512 octets; real servers send longer EHLO lines, so allow some room. */
const MAX_REPLY_LINE = 4096;
const MAX_REPLY_LINES = 200;
const ENHANCED = /^([245]\.\d{1,3}\.\d{1,3})(?: |$)/;

export async function readReply(reader: SocketReader): Promise<Reply> {
  const lines: string[] = [];
  let code = 0;
  let enhanced: string | undefined;
  for (;;) {
    const raw = await reader.readLine(MAX_REPLY_LINE);
    if (raw === null) throw new ClientError("closed", "connection closed by the server", { temporary: true });
    if (raw === "too-long") throw new ClientError("protocol", "reply line too long", { temporary: true });
    const line = raw.toString("utf8");
    const m = /^([2-5]\d\d)([ -]|$)(.*)$/s.exec(line);
    if (!m) throw new ClientError("protocol", `Cannot parse reply line ${JSON.stringify(line.slice(0, 80))}`, { temporary: true });
    const lineCode = Number(m[1]);
    if (lines.length === 0) code = lineCode;
    else if (lineCode !== code) throw new ClientError("protocol", `reply codes differ: ${code} then ${lineCode}`, { temporary: true });
    let text = m[3]!;
    const e = ENHANCED.exec(text);
    if (e && e[1]![0] === String(code)[0] && (lines.length === 0 || e[1] === enhanced)) {
      if (lines.length === 0) enhanced = e[1];
      text = text.slice(e[0].length);
    }
    lines.push(text);
    if (lines.length > MAX_REPLY_LINES) throw new ClientError("protocol", "reply has too many lines", { temporary: true });
    if (m[2] !== "-") return enhanced === undefined ? { code, lines } : { code, enhanced, lines };
  }
}

/** EHLO keywords (RFC 5321 §4.1.1.1): the lines after the first, keyword upper-cased → its parameters. */
export function parseExtensions(ehlo: Reply): Map<string, string> {
  const ext = new Map<string, string>();
  for (const line of ehlo.lines.slice(1)) {
    const m = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:[ =](.*))?$/.exec(line.trim());
    if (m) ext.set(m[1]!.toUpperCase(), (m[2] ?? "").trim());
  }
  return ext;
}

/** RFC 3461 §4 xtext: "+" and "=", controls, space and non-ASCII become "+HH". */
export function xtext(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    out += byte >= 33 && byte <= 126 && byte !== 43 && byte !== 61 ? String.fromCharCode(byte) : `+${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}
