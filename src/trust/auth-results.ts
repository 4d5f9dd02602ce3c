// The results of the inbound authentication checks as data, and the two header fields written from them:
// Authentication-Results (RFC 8601 §2.2, authserv-id = this host) and Received-SPF (RFC 7208 §9.1).
// Trusts none of the identities it prints (HELO, MAIL FROM, From domain, DKIM tags, library comments):
// result keywords come from fixed lists, property values are written as RFC 8601 tokens, addresses or
// quoted-strings, comments are escaped, controls never reach the field, and the field is folded at spaces.
import { field } from "../core/header-field.js";

export const SPF_RESULTS = ["pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"] as const;
export type SpfResult = (typeof SPF_RESULTS)[number];
/** RFC 8601 §2.7.1 dkim results ("policy": a signature refused by local policy, e.g. a short key or rsa-sha1). */
export const DKIM_RESULTS = ["pass", "fail", "neutral", "none", "policy", "temperror", "permerror"] as const;
export type DkimResult = (typeof DKIM_RESULTS)[number];
export const DMARC_RESULTS = ["pass", "fail", "none", "temperror", "permerror"] as const;
export type DmarcResult = (typeof DMARC_RESULTS)[number];
export const ARC_RESULTS = ["pass", "fail", "none"] as const;
export type ArcResult = (typeof ARC_RESULTS)[number];
export const DMARC_POLICIES = ["none", "quarantine", "reject"] as const;
export type DmarcPolicy = (typeof DMARC_POLICIES)[number];

export interface SpfOutcome {
  /** Which identity was checked: MAIL FROM, or HELO (its own check, or MAIL FROM <>, RFC 7208 §2.4). */
  readonly identity: "mailfrom" | "helo";
  readonly result: SpfResult;
  /** The domain whose record was evaluated. */
  readonly domain: string;
  /** The reverse-path ("" for <>) and HELO as the client gave them. */
  readonly sender: string;
  readonly helo: string;
  readonly clientIp: string;
}

export interface DkimOutcome {
  readonly result: DkimResult;
  /** d=, s=, a= and the first 8 characters of b= (RFC 6008 header.b), when the signature had them. */
  readonly domain?: string;
  readonly selector?: string;
  readonly algorithm?: string;
  readonly signaturePrefix?: string;
  /** Why a signature did not pass ("body hash did not verify", "bad signature", "DNS failure: ETIMEOUT"). */
  readonly reason?: string;
}

export interface DmarcOutcome {
  readonly result: DmarcResult;
  /** The RFC5322.From domain (header.from). */
  readonly fromDomain: string;
  /** The policy that applies to this message (p, sp or np; one step weaker with t=y); null when there is none. */
  readonly policy: DmarcPolicy | null;
  /** The published p= of the record, for the comment. */
  readonly published: DmarcPolicy | null;
  /** The record's pct= when below 100 (RFC 7489 §6.6.4 sampling), for the comment. */
  readonly percent?: number;
}

export interface ArcOutcome {
  readonly result: ArcResult;
  /** The instance of the newest ARC set, when there is a chain. */
  readonly instance?: number;
  readonly reason?: string;
}

export interface AuthOutcome {
  /** The MAIL FROM identity; for MAIL FROM <> the HELO identity (postmaster@helo). */
  readonly spf: SpfOutcome;
  /** The separate HELO check (RFC 7208 §2.3), when MAIL FROM was not <> and HELO is a domain name. */
  readonly helo: SpfOutcome | null;
  /** One entry per DKIM-Signature; a single "none" when the message has none. */
  readonly dkim: readonly DkimOutcome[];
  /** Null when DMARC could not be evaluated: no From domain, or several (RFC 7489 §6.6.1). */
  readonly dmarc: DmarcOutcome | null;
  /** Null when the ARC check did not finish (RFC 8617 has no temperror): left out of the header. */
  readonly arc: ArcOutcome | null;
}

/** Longest property value written; a longer one (a hostile HELO, say) is left out rather than cut. */
const MAX_VALUE = 255;
const MAX_COMMENT = 120;

/** One line of text from outside: controls (C0, DEL, C1, Unicode line breaks) and white space runs become one space. */
export function oneLine(text: string): string {
  return text
    .replace(/[\x00-\x20\x7f\u0080-\u009f\u2028\u2029]+/g, " ")
    .replace(/\s+/g, " ")
    .trim();
}

/** RFC 2045 token: printable US-ASCII except SPACE and tspecials. */
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;
/** RFC 5322 dot-atom-text, with UTF-8 allowed (RFC 6532 §3.2). */
const DOT_ATOM = /^(?:[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]|[^\x00-\x7f])+(?:\.(?:[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]|[^\x00-\x7f])+)*$/;
/** A domain-name as RFC 8601 §2.2 takes it from RFC 6376: labels of letters, digits and hyphens (or U-labels). */
const DOMAIN = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?|[^\x00-\x7f]+)(?:\.(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?|[^\x00-\x7f]+))*\.?$/;

/** An RFC 5322 quoted-string as SMTP writes a quoted local-part: "..." with only \\ and \" escaped inside. */
const QUOTED = /^"(?:[^"\\]|\\.)*"$/;

export function quoted(text: string): string {
  return `"${text.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/**
 * An RFC 8601 §2.2 pvalue: a token, a [local-part] "@" domain-name (local-part quoted when it is not a
 * dot-atom), or else a quoted-string. Null when there is nothing to write or it is too long.
 */
export function propertyValue(raw: string): string | null {
  const text = oneLine(raw);
  if (text === "" || Buffer.byteLength(text) > MAX_VALUE) return null;
  if (TOKEN.test(text)) return text;
  const at = text.lastIndexOf("@");
  if (at >= 0) {
    const local = text.slice(0, at);
    const domain = text.slice(at + 1);
    if (DOMAIN.test(domain)) return `${local === "" || DOT_ATOM.test(local) || QUOTED.test(local) ? local : quoted(local)}@${domain}`;
  }
  return quoted(text);
}

/** A comment: "(" text ")" with "(", ")" and "\" escaped (RFC 5322 §3.2.2), cut to MAX_COMMENT characters. */
export function comment(raw: string): string {
  const text = oneLine(raw);
  const cut = text.length > MAX_COMMENT ? `${text.slice(0, MAX_COMMENT)}...` : text;
  return `(${cut.replace(/[\\()]/g, (c) => `\\${c}`)})`;
}

/** The key-value-pair value of Received-SPF (RFC 7208 §9.1): dot-atom or quoted-string. */
function spfValue(raw: string): string | null {
  const text = oneLine(raw);
  if (text === "" || Buffer.byteLength(text) > MAX_VALUE) return null;
  return DOT_ATOM.test(text) ? text : quoted(text);
}

/** The authserv-id: our host name, a token after the config's checks; quoted if it somehow is not. */
function authservId(hostname: string): string {
  const text = oneLine(hostname);
  return TOKEN.test(text) ? text : quoted(text);
}

interface ResInfo {
  readonly method: string;
  readonly result: string;
  readonly comment?: string;
  readonly props: readonly (readonly [string, string | undefined])[];
}

function resinfo(r: ResInfo): string {
  const parts = [`${r.method}=${r.result}`];
  if (r.comment) parts.push(comment(r.comment));
  for (const [name, raw] of r.props) {
    if (raw === undefined) continue;
    const value = propertyValue(raw);
    if (value !== null) parts.push(`${name}=${value}`);
  }
  return parts.join(" ");
}

function spfInfo(s: SpfOutcome): ResInfo {
  // RFC 8601 §2.7.2: smtp.mailfrom for the MAIL FROM identity, smtp.helo for the HELO identity.
  return s.identity === "mailfrom"
    ? { method: "spf", result: s.result, props: [["smtp.mailfrom", s.sender]] }
    : { method: "spf", result: s.result, props: [["smtp.helo", s.helo]] };
}

function dkimInfo(d: DkimOutcome): ResInfo {
  return {
    method: "dkim",
    result: d.result,
    ...(d.result !== "pass" && d.reason ? { comment: d.reason } : {}),
    props: [
      ["header.d", d.domain],
      ["header.s", d.selector],
      ["header.a", d.algorithm],
      ["header.b", d.signaturePrefix],
    ],
  };
}

function dmarcInfo(d: DmarcOutcome): ResInfo {
  return {
    method: "dmarc",
    result: d.result,
    ...(d.published ? { comment: `p=${d.published}${d.percent !== undefined ? ` pct=${d.percent}` : ""}` } : {}),
    props: [
      ["header.from", d.fromDomain],
      ["policy.dmarc", d.policy ?? undefined],
    ],
  };
}

function arcInfo(a: ArcOutcome): ResInfo {
  return {
    method: "arc",
    result: a.result,
    ...(a.result === "fail" && a.reason ? { comment: a.reason } : a.instance !== undefined ? { comment: `i=${a.instance}` } : {}),
    props: [],
  };
}

/** "Authentication-Results: host; spf=...; dkim=...; dmarc=...; arc=..." CRLF, folded. */
export function authenticationResults(hostname: string, o: AuthOutcome): string {
  const infos: ResInfo[] = [spfInfo(o.spf)];
  if (o.helo) infos.push(spfInfo(o.helo));
  infos.push(...o.dkim.map(dkimInfo));
  if (o.dmarc) infos.push(dmarcInfo(o.dmarc));
  if (o.arc) infos.push(arcInfo(o.arc));
  return field("Authentication-Results", `${authservId(hostname)}; ${infos.map(resinfo).join("; ")}`);
}

const SPF_PHRASES: Record<SpfResult, string> = {
  pass: "designates {ip} as permitted sender",
  fail: "does not designate {ip} as permitted sender",
  softfail: "does not designate {ip} as permitted sender (transitioning)",
  neutral: "neither permits nor denies {ip}",
  none: "does not publish SPF",
  temperror: "could not be checked: temporary DNS error",
  permerror: "has an SPF record that cannot be evaluated",
};

/** "Received-SPF: result (comment) client-ip=...; envelope-from=...; helo=...; identity=...; receiver=...;" CRLF (RFC 7208 §9.1). */
export function receivedSpf(hostname: string, s: SpfOutcome): string {
  const host = oneLine(hostname);
  const text = `${host}: domain ${s.domain || "(none)"} ${SPF_PHRASES[s.result].replace("{ip}", s.clientIp)}`;
  const pairs: string[] = [];
  const add = (key: string, raw: string): void => {
    const v = spfValue(raw);
    if (v !== null) pairs.push(`${key}=${v};`);
  };
  add("client-ip", s.clientIp);
  if (s.identity === "mailfrom") add("envelope-from", s.sender);
  add("helo", s.helo);
  add("identity", s.identity);
  add("receiver", host);
  return field("Received-SPF", `${s.result} ${comment(text)} ${pairs.join(" ")}`);
}
