// Mail addresses and SMTP paths (RFC 5321 §4.1.2), with UTF-8 allowed in local parts and domains
// (RFC 6531). Input comes from the network: every function here returns null instead of throwing.
// Local parts are matched case-insensitively for local users, as almost every deployed server does;
// no non-ASCII character (U+212A KELVIN SIGN) is ever folded into ASCII.

export interface Address {
  readonly local: string;
  readonly domain: string;
}

// atext (RFC 5322 §3.2.3) plus any non-ASCII character (RFC 6531 §3.3).
const ATOM = "[A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~\\u0080-\\uFFFF]+";
const DOT_STRING = new RegExp(`^${ATOM}(?:\\.${ATOM})*$`);
const QUOTED = /^"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\uffff]|\\[\x20-\x7e])*"$/;
const LABEL = "[A-Za-z0-9\\u0080-\\uFFFF](?:[A-Za-z0-9\\-\\u0080-\\uFFFF]*[A-Za-z0-9\\u0080-\\uFFFF])?";
const DOMAIN = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const GENERAL_LITERAL = /^[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+$/;

export const MAX_LOCAL_PART = 64;
export const MAX_DOMAIN = 255;

export function isValidDomain(domain: string): boolean {
  if (domain.length === 0 || domain.length > MAX_DOMAIN) return false;
  if (domain.startsWith("[") && domain.endsWith("]")) {
    const inner = domain.slice(1, -1);
    if (IPV4.test(inner)) return true;
    if (/^IPv6:/i.test(inner)) return /^[0-9a-f:.]+$/i.test(inner.slice(5)) && inner.includes(":", 5);
    return GENERAL_LITERAL.test(inner);
  }
  return DOMAIN.test(domain) && domain.split(".").every((l) => l.length <= 63);
}

export function isValidLocalPart(local: string): boolean {
  if (local.length === 0 || Buffer.byteLength(local) > MAX_LOCAL_PART) return false;
  return DOT_STRING.test(local) || QUOTED.test(local);
}

/**
 * Parses `local@domain` (no angle brackets). The last "@" outside quotes separates the parts.
 * A quoted local part that needs no quotes comes back unquoted (`"alice"` is `alice`): RFC 5321
 * §4.1.2 makes them the same mailbox and says the unquoted form SHOULD be used.
 */
export function parseAddress(text: string): Address | null {
  const at = text.lastIndexOf("@");
  if (at <= 0) return null;
  let local = text.slice(0, at);
  const domain = text.slice(at + 1);
  if (!isValidLocalPart(local) || !isValidDomain(domain)) return null;
  if (local.startsWith('"')) {
    const bare = local.slice(1, -1).replace(/\\(.)/g, "$1");
    if (DOT_STRING.test(bare)) local = bare;
  }
  return { local, domain };
}

/**
 * Parses an SMTP path `<...>` with an optional, ignored source route (RFC 5321 §4.1.2, C.).
 * Returns "null-path" for `<>`, which only a reverse-path may be.
 */
export function parsePath(text: string): Address | "null-path" | null {
  if (!text.startsWith("<") || !text.endsWith(">")) return null;
  let inner = text.slice(1, -1);
  if (inner === "") return "null-path";
  if (inner.startsWith("@")) {
    const colon = inner.indexOf(":");
    if (colon < 0) return null;
    const route = inner.slice(0, colon).split(",");
    if (!route.every((hop) => hop.startsWith("@") && isValidDomain(hop.slice(1)))) return null;
    inner = inner.slice(colon + 1);
  }
  return parseAddress(inner);
}

export function formatAddress(a: Address): string {
  return `${a.local}@${a.domain}`;
}

/** The form used as a key for lookups and mailbox names: both parts lowercased (see foldCase). */
export function canonical(a: Address): string {
  return `${foldCase(a.local)}@${foldCase(a.domain)}`;
}

/**
 * Lowercases for lookup keys, character by character, except where a non-ASCII character would
 * become ASCII: toLowerCase maps U+212A KELVIN SIGN to "k" and U+0130 to "i" + U+0307, so another
 * name could reach an ASCII account (or its login throttle). Ü still folds to ü.
 */
export function foldCase(text: string): string {
  return text.replace(/[A-Z]+|[^\x00-\x7f]/gu, (s) => {
    const lower = s.toLowerCase();
    return s.charCodeAt(0) > 0x7f && /[\x00-\x7f]/.test(lower) ? s : lower;
  });
}

/** True when the address is pure ASCII (needs no SMTPUTF8). */
export function isAscii(text: string): boolean {
  return /^[\x00-\x7f]*$/.test(text);
}
