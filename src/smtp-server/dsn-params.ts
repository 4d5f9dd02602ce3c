// The DSN extension's MAIL and RCPT parameters (RFC 3461 §4): RET=FULL|HDRS and ENVID=xtext on MAIL,
// NOTIFY=NEVER|SUCCESS,FAILURE,DELAY and ORCPT=addr-type;xtext on RCPT, with xtext (RFC 3461 §4)
// decoded and encoded. Trusts nothing: every value is checked and a bad one is a 501 5.5.4 reply.
import { reply, type Reply } from "../core/reply.js";
import { printable } from "../protocol/wire-text.js";

/** RFC 3461 §4.4: "the ENVID parameter ... MUST NOT be longer than 100 characters" (measured as sent, xtext). */
export const MAX_ENVID = 100;
/** RFC 3461 §4.2: the ORCPT parameter's value (type, ";", xtext) is at most 500 characters. */
export const MAX_ORCPT = 500;

export type Ret = "FULL" | "HDRS";
export const NOTIFY_EVENTS = ["SUCCESS", "FAILURE", "DELAY"] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

export type Notify =
  | { readonly kind: "never" }
  /** The events asked for, in the order SUCCESS, FAILURE, DELAY; never empty. */
  | { readonly kind: "on"; readonly events: readonly NotifyEvent[] };

export interface Orcpt {
  /** RFC 3461 §4.2 addr-type as given ("rfc822" in practice; compare case-insensitively). */
  readonly addrType: string;
  /** The decoded address ("user@example.org"). */
  readonly address: string;
}

export interface MailDsnParams {
  readonly ret?: Ret;
  /** The decoded envelope id: printable US-ASCII (RFC 3461 §4.4). */
  readonly envid?: string;
}

export interface RcptDsnParams {
  readonly notify?: Notify;
  readonly orcpt?: Orcpt;
}

type Params = ReadonlyMap<string, string | null>;

const bad = (text: string): Reply => reply(501, "5.5.4", text);

/**
 * RET and ENVID from MAIL's parameters (keys upper-case, as parseMailArgs gives them); other keys
 * are left to the caller. Returns the typed values, or the 501 5.5.4 reply to send.
 */
export function parseMailDsnParams(params: Params): MailDsnParams | Reply {
  let ret: Ret | undefined;
  let envid: string | undefined;
  if (params.has("RET")) {
    const v = params.get("RET")?.toUpperCase();
    if (v !== "FULL" && v !== "HDRS") return bad("Bad RET parameter: use RET=FULL or RET=HDRS (RFC 3461)");
    ret = v;
  }
  if (params.has("ENVID")) {
    const v = params.get("ENVID");
    if (!v) return bad("Bad ENVID parameter: ENVID=<xtext> needs a value (RFC 3461)");
    if (v.length > MAX_ENVID) return bad(`ENVID parameter too long: at most ${MAX_ENVID} characters (RFC 3461)`);
    const decoded = decodeXtext(v);
    if (decoded === null) return bad(`Bad ENVID parameter: not xtext: ${printable(v)}`);
    if (!/^[\x20-\x7e]+$/.test(decoded)) return bad("Bad ENVID parameter: the decoded envelope id must be printable US-ASCII");
    envid = decoded;
  }
  return { ...(ret ? { ret } : {}), ...(envid !== undefined ? { envid } : {}) };
}

/** NOTIFY and ORCPT from RCPT's parameters; other keys are left to the caller. */
export function parseRcptDsnParams(params: Params): RcptDsnParams | Reply {
  let notify: Notify | undefined;
  let orcpt: Orcpt | undefined;
  if (params.has("NOTIFY")) {
    const v = params.get("NOTIFY");
    const parsed = v ? parseNotify(v) : null;
    if (parsed === null) return bad("Bad NOTIFY parameter: use NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY (RFC 3461)");
    notify = parsed;
  }
  if (params.has("ORCPT")) {
    const v = params.get("ORCPT");
    if (!v) return bad("Bad ORCPT parameter: ORCPT=<addr-type>;<xtext> needs a value (RFC 3461)");
    if (v.length > MAX_ORCPT) return bad(`ORCPT parameter too long: at most ${MAX_ORCPT} characters (RFC 3461)`);
    const semi = v.indexOf(";");
    const addrType = semi < 0 ? "" : v.slice(0, semi);
    // RFC 3461 §4.2: addr-type is an atom (RFC 5321 §4.1.2 atext); registered types are rfc822, utf-8, x400.
    if (!/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+$/.test(addrType)) return bad(`Bad ORCPT parameter: expected <addr-type>;<xtext>: ${printable(v)}`);
    const address = decodeXtext(v.slice(semi + 1));
    if (address === null || address === "") return bad(`Bad ORCPT parameter: the address is not xtext: ${printable(v)}`);
    // The address is printed in a DSN's Original-Recipient field: no control characters, no 8-bit.
    if (!/^[\x20-\x7e]+$/.test(address)) return bad("Bad ORCPT parameter: the decoded address must be printable US-ASCII");
    orcpt = { addrType, address };
  }
  return { ...(notify ? { notify } : {}), ...(orcpt ? { orcpt } : {}) };
}

function parseNotify(value: string): Notify | null {
  const items = value.toUpperCase().split(",");
  if (items.length === 1 && items[0] === "NEVER") return { kind: "never" };
  const asked = new Set<string>();
  for (const item of items) {
    // NEVER combined with anything else is an error (RFC 3461 §4.1); a repeated event changes nothing.
    if (!(NOTIFY_EVENTS as readonly string[]).includes(item)) return null;
    asked.add(item);
  }
  return { kind: "on", events: NOTIFY_EVENTS.filter((e) => asked.has(e)) };
}

/**
 * xtext (RFC 3461 §4): printable US-ASCII except "+" and "=", and "+XX" for any octet. Lower-case hex
 * digits are accepted too (the RFC asks senders for upper case). Null when the text is not xtext.
 * Octets decode one to one (latin1); callers check what they may hold.
 */
export function decodeXtext(text: string): string | null {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2b) {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null;
      out += String.fromCharCode(parseInt(hex, 16));
      i += 2;
    } else if (c >= 33 && c <= 126 && c !== 0x3d) out += text[i];
    else return null;
  }
  return out;
}

/** The xtext form of a text of octets (latin1 code units), for passing ENVID and ORCPT to the next hop. */
export function encodeXtext(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) throw new RangeError("Cannot encode a character above U+00FF as xtext");
    out += c >= 33 && c <= 126 && c !== 0x2b && c !== 0x3d ? text[i] : "+" + c.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}
