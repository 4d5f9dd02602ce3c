// The headers Petrel adds to each delivered copy: Return-Path (RFC 5321 §4.4) and a Received
// trace line (RFC 5321 §4.4, "for" names exactly one recipient) with an RFC 5322 §3.3 date. The
// client is named as Sendmail's $_ names it: "from HELO (ptr-name [ip])", "(ptr-name [ip] (may be
// forged))" when the PTR name does not resolve back to the IP, "(unknown [ip])" without a PTR name.
// Trusts nothing it prints: control characters (CR, LF included) become "?", and content whose first
// line would continue our Received header (RFC 5322 §2.2.3, leading SP/HTAB) is refused with 550 5.6.0.
import { MailError } from "../core/errors.js";
import { headerText } from "../core/header-field.js";
import { reply } from "../core/reply.js";
import { receivedTlsComment, type TlsInfo } from "../tls/tls-info.js";

/** What reverse DNS says the client is (smtp-server/reverse-dns.ts). */
export type ClientName =
  /** The PTR name of the IP, whose A/AAAA records contain the IP (forward-confirmed). */
  | { readonly kind: "confirmed"; readonly name: string }
  /** A PTR name whose A/AAAA records do not contain the IP: anyone can publish such a PTR. */
  | { readonly kind: "unconfirmed"; readonly name: string }
  /** No PTR record, or the lookup failed or took too long. */
  | { readonly kind: "none" };

export interface TraceInfo {
  readonly helo: string;
  readonly peerAddress: string;
  /** The client's reverse DNS, for a client that connected over the network (absent: local or bounce mail). */
  readonly client?: ClientName;
  readonly hostname: string;
  /** "SMTP", "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA", "UTF8SMTP"... (RFC 3848, RFC 6531). */
  readonly protocol: string;
  /** The TLS session the message came over, for a comment in the Received header. */
  readonly tls?: TlsInfo | null;
  /** The authenticated user, named in the Received header only when submission.received_auth_user is on. */
  readonly authUser?: string | null;
  readonly id: string;
  readonly receivedAt: Date;
}

export function returnPathHeader(sender: string): string {
  return `Return-Path: <${headerText(sender)}>\r\n`;
}

export function receivedHeader(t: TraceInfo, forRecipient: string | null): string {
  const from = receivedFrom(t);
  const forClause = forRecipient ? `\r\n\tfor <${headerText(forRecipient)}>` : "";
  const tls = t.tls ? `\t${headerText(receivedTlsComment(t.tls))}\r\n` : "";
  const auth = t.authUser ? `\t(Authenticated sender: ${headerText(t.authUser)})\r\n` : "";
  return (
    `Received: ${from}\r\n` +
    tls +
    auth +
    `\tby ${headerText(t.hostname)} (Petrel) with ${headerText(t.protocol)} id ${headerText(t.id)}${forClause};\r\n` +
    `\t${rfc5322Date(t.receivedAt)}\r\n`
  );
}

/** "from HELO (name [ip])": who handed us the message, as the Received field says it (escaped). */
export function receivedFrom(t: Pick<TraceInfo, "helo" | "peerAddress" | "client">): string {
  const peer = headerText(t.peerAddress);
  return `from ${headerText(t.helo) || "unknown"} (${clientComment(t.client, peer.includes(":") ? `[IPv6:${peer}]` : `[${peer}]`)})`;
}

/** Sendmail's $_: "name [ip]", "name [ip] (may be forged)" or "unknown [ip]"; just "[ip]" without a lookup. */
function clientComment(client: ClientName | undefined, literal: string): string {
  if (!client) return literal;
  if (client.kind === "none") return `unknown ${literal}`;
  const name = headerText(client.name);
  return client.kind === "confirmed" ? `${name} ${literal}` : `${name} ${literal} (may be forged)`;
}

const SP = 0x20, HTAB = 0x09;

/**
 * Refuses content whose first line starts with white space: stored after our Received header it
 * would be read as part of it (RFC 5322 §2.2.3 folding). Such a message has no valid first header
 * field anyway, so refusing (550 5.6.0) loses nothing a reader could have used.
 */
export function checkContentStart(firstByte: number): void {
  if (firstByte === SP || firstByte === HTAB)
    throw new MailError("header-continuation", "Message starts with white space", {
      reply: reply(550, "5.6.0", "Message must not start with white space: its first line would continue a trace header (RFC 5322 section 2.2.3)"),
    });
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
