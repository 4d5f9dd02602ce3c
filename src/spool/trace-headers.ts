// The headers Petrel adds to each delivered copy: Return-Path (RFC 5321 §4.4) and a Received
// trace line (RFC 5321 §4.4, "for" names exactly one recipient) with an RFC 5322 §3.3 date.

export interface TraceInfo {
  readonly helo: string;
  readonly peerAddress: string;
  readonly hostname: string;
  /** "SMTP", "ESMTP", "UTF8SMTP", and later ESMTPS/ESMTPA/ESMTPSA (RFC 3848, RFC 6531). */
  readonly protocol: string;
  readonly id: string;
  readonly receivedAt: Date;
}

export function returnPathHeader(sender: string): string {
  return `Return-Path: <${sender}>\r\n`;
}

export function receivedHeader(t: TraceInfo, forRecipient: string | null): string {
  const literal = t.peerAddress.includes(":") ? `[IPv6:${t.peerAddress}]` : `[${t.peerAddress}]`;
  const forClause = forRecipient ? `\r\n\tfor <${forRecipient}>` : "";
  return (
    `Received: from ${t.helo || "unknown"} (${literal})\r\n` +
    `\tby ${t.hostname} (Petrel) with ${t.protocol} id ${t.id}${forClause};\r\n` +
    `\t${rfc5322Date(t.receivedAt)}\r\n`
  );
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** "Sun, 22 Nov 2026 02:35:04 +0000" in the machine's local time zone. */
export function rfc5322Date(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  const zone = `${sign}${p(Math.floor(Math.abs(off) / 60))}${p(Math.abs(off) % 60)}`;
  return `${DAYS[d.getDay()]}, ${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${zone}`;
}
