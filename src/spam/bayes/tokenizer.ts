// Turns a message into the distinct tokens the Bayes classifier counts, in the spirit of SpamBayes'
// tokenizer: header tokens prefixed with the header's name, words of the decoded text bodies (MIME,
// quoted-printable, base64 and charsets decoded by postal-mime; HTML reduced to text, link hosts kept).
// Trusts nothing in the message: only the first MAX_SCAN_BYTES are read and at most MAX_TOKENS kept.
import crypto from "node:crypto";
import PostalMime, { type Email } from "postal-mime";

/**
 * Octets of a message the tokenizer reads (headers included); the rest is ignored, as SpamAssassin's
 * spamc (500 KB) and rspamd (max_size) skip what is past their limits. Bulk spam is small; a large
 * message is mostly attachment, which gives no word tokens anyway.
 */
export const MAX_SCAN_BYTES = 256 * 1024;
/** Distinct tokens kept per message: bounds database lookups and training writes. */
export const MAX_TOKENS = 5000;
/** Changes whenever the same message would give other tokens (the store records it; see token-store.ts). */
export const TOKENIZER_VERSION = 1;

const MIN_WORD = 3;
const MAX_WORD = 12;
/** Headers never tokenized: verdicts of spam filters (ours or a forger's) must not teach the filter. */
const IGNORED_HEADER = /^(x-spam-|x-bogosity|x-petrel-)/;
/** Headers whose addresses are tokens. */
const ADDRESS_HEADERS = new Set(["from", "reply-to", "sender", "return-path", "to", "cc", "errors-to"]);
/** Headers whose whole (shortened) value is one token: the software that sent the message. */
const VALUE_HEADERS = new Set(["x-mailer", "user-agent", "content-transfer-encoding", "precedence", "x-priority", "importance", "x-msmail-priority"]);

/** The part of a message the tokenizer looks at: at most MAX_SCAN_BYTES, without an mbox "From " line. */
export function scannedPart(raw: Buffer): Buffer {
  let part = raw.subarray(0, MAX_SCAN_BYTES);
  if (part.subarray(0, 5).toString("latin1") === "From ") {
    const nl = part.indexOf(0x0a);
    part = nl < 0 ? Buffer.alloc(0) : part.subarray(nl + 1);
  }
  return part;
}

/**
 * Identifies a message for the store's record of what it was trained on: the scanned part with CRLF
 * read as LF, so the copy received over SMTP and the one stored in a Maildir (LF files) are one message.
 */
export function messageDigest(raw: Buffer): string {
  return crypto.createHash("sha256").update(scannedPart(raw).toString("latin1").replace(/\r\n/g, "\n"), "latin1").digest("hex");
}

/** The distinct tokens of a message (first seen first), at most MAX_TOKENS. Never throws on bad MIME. */
export async function tokenize(raw: Buffer): Promise<string[]> {
  const part = scannedPart(raw);
  const out = new TokenSet();
  let email: Email | null = null;
  try {
    email = await PostalMime.parse(part, { maxNestingDepth: 32, maxHeadersSize: 128 * 1024, maxRfc822NestingDepth: 2 });
  } catch {
    out.add("parse:error");
  }
  if (!email) {
    addWords(out, "", part.toString("latin1"));
    return out.tokens();
  }
  addHeaders(out, email);
  if (email.text) addWords(out, "", email.text);
  if (email.html) {
    out.add(email.text ? "html:alternative" : "html:only");
    addHtml(out, email.html);
  }
  if (!email.text && !email.html) out.add("body:none");
  for (const a of email.attachments.slice(0, 32)) {
    out.add(`attachment:${a.mimeType.toLowerCase()}`);
    const ext = /\.([A-Za-z0-9]{1,8})$/.exec(a.filename ?? "")?.[1];
    if (ext) out.add(`filename:.${ext.toLowerCase()}`);
  }
  return out.tokens();
}

/** Distinct tokens up to MAX_TOKENS; adding past the cap is ignored. */
class TokenSet {
  private readonly set = new Set<string>();
  add(token: string): void {
    if (this.set.size < MAX_TOKENS) this.set.add(token);
  }
  get full(): boolean {
    return this.set.size >= MAX_TOKENS;
  }
  tokens(): string[] {
    return [...this.set];
  }
}

function addHeaders(out: TokenSet, email: Email): void {
  let recipients = 0;
  for (const h of email.headers) {
    const name = h.key;
    if (IGNORED_HEADER.test(name)) continue;
    out.add(`header:${name}`);
    const value = h.value;
    if (name === "subject") continue; // decoded below
    if (ADDRESS_HEADERS.has(name)) {
      for (const addr of addressesIn(value)) {
        if (name === "to" || name === "cc") recipients++;
        const domain = addr.slice(addr.lastIndexOf("@") + 1);
        if (name === "to" || name === "cc") out.add(`${name}:domain:${domain}`);
        else {
          out.add(`${name}:addr:${addr}`);
          out.add(`${name}:domain:${domain}`);
        }
      }
      if (!value.includes("@")) out.add(`${name}:no-address`);
    } else if (name === "received") addReceived(out, value);
    else if (name === "message-id") {
      const domain = /^[A-Za-z0-9.-]+/.exec(value.slice(value.lastIndexOf("@") + 1))?.[0];
      out.add(value.includes("@") && domain ? `message-id:@${domainSuffix(domain.toLowerCase(), 2)}` : "message-id:invalid");
    } else if (name === "content-type") {
      const type = /^\s*([A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+)/.exec(value)?.[1];
      out.add(`content-type:${type ? type.toLowerCase() : "invalid"}`);
      const charset = /charset\s*=\s*"?([A-Za-z0-9_.:-]+)/i.exec(value)?.[1];
      if (charset) out.add(`charset:${charset.toLowerCase()}`);
    } else if (VALUE_HEADERS.has(name)) out.add(`${name}:${value.trim().toLowerCase().replace(/\s+/g, " ").slice(0, 40)}`);
  }
  // The display names, decoded (=?utf-8?...?=) by postal-mime.
  for (const [field, addr] of [["from", email.from], ["reply-to", email.replyTo?.[0]]] as const) {
    if (addr && addr.name) for (const w of words(addr.name)) out.add(`${field}:name:${w}`);
  }
  out.add(`recipients:${recipients === 0 ? "0" : recipients === 1 ? "1" : recipients <= 5 ? "2-5" : "many"}`);
  const subject = email.subject ?? "";
  if (subject === "") out.add("subject:none");
  for (const w of words(subject)) out.add(`subject:${w}`);
  for (const run of subject.match(/[!?$%*]{2,}/g) ?? []) out.add(`subject:${run.slice(0, 3)}`);
  if (/[A-Z]{6,}/.test(subject) && subject === subject.toUpperCase()) out.add("subject:all-caps");
}

/**
 * Hosts and IP networks named in a Received line: where the message really came through. Like every
 * search in this file over text from the message, it splits first and matches anchored, short pieces:
 * an unanchored pattern that can fail late backtracks over the whole value (quadratic time).
 */
function addReceived(out: TokenSet, value: string): void {
  // What the receiving server thought of the client's reverse DNS (Sendmail, Postfix and Petrel write
  // "(unknown [ip])" without a PTR name and "(may be forged)" when it does not resolve back).
  const lower = value.toLowerCase();
  if (lower.includes("(may be forged)")) out.add("received:rdns-forged");
  if (lower.includes("(unknown [") || lower.includes("(unknown[")) out.add("received:rdns-none");
  for (const piece of value.toLowerCase().split(/[^a-z0-9.-]+/)) {
    const host = piece.replace(/^[.-]+/, "").replace(/[.-]+$/, "");
    if (host.length > 253 || !/^[a-z0-9-]+(?:\.[a-z0-9-]+)+$/.test(host)) continue;
    if (/^\d+(\.\d+){3}$/.test(host)) {
      const octets = host.split(".");
      out.add(`received:ip:${octets.slice(0, 2).join(".")}`);
      out.add(`received:ip:${octets.slice(0, 3).join(".")}`);
    } else if (/[a-z]/.test(host.slice(host.lastIndexOf(".") + 1))) out.add(`received:${domainSuffix(host, 2)}`);
  }
}

/** The last `labels` labels of a host name: mail.sub.example.com, 2 → example.com. */
function domainSuffix(host: string, labels: number): string {
  return host.split(".").slice(-labels).join(".");
}

function addressesIn(value: string): string[] {
  const found: string[] = [];
  for (const piece of value.toLowerCase().split(/[^a-z0-9._%+=@-]+/)) {
    if (piece.length <= 254 && /^[a-z0-9._%+=-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}$/.test(piece) && found.push(piece) >= 20) break;
  }
  return found;
}

/** HTML reduced to the text a reader sees, plus the hosts its links and images point to. */
function addHtml(out: TokenSet, html: string): void {
  const lower = html.toLowerCase();
  for (const [tag, token] of [["<img", "html:img"], ["<script", "html:script"], ["<form", "html:form"], ["<table", "html:table"], ["<font", "html:font"], ["<iframe", "html:iframe"]] as const)
    if (lower.includes(tag)) out.add(token);
  // One way only to match the white space around "=" and a quote (two adjacent \s* would backtrack).
  for (const m of html.matchAll(/\b(?:href|src|action)\s*=\s*(?:["']\s*)?([a-z][a-z0-9+.-]{0,30}):(?:\/\/)?([^\s"'<>/?#]*)/gi)) {
    const scheme = m[1]!.toLowerCase();
    out.add(`proto:${scheme}`);
    if (scheme === "http" || scheme === "https") addUrlHost(out, m[2]!);
  }
  addWords(out, "", htmlToText(html));
}

/**
 * Strips scripts, styles and comments (comments joined away: "V<!-- -->iagra" reads "Viagra"), tags,
 * entities. One pass with indexOf, linear in the length: an unclosed comment or script hides the rest
 * (as in a browser), an unclosed tag is text.
 */
export function htmlToText(html: string): string {
  const lower = html.toLowerCase();
  const parts: string[] = [];
  let i = 0;
  while (i < html.length) {
    const lt = html.indexOf("<", i);
    if (lt < 0) {
      parts.push(html.slice(i));
      break;
    }
    parts.push(html.slice(i, lt));
    if (lower.startsWith("<!--", lt)) {
      const end = html.indexOf("-->", lt + 4);
      i = end < 0 ? html.length : end + 3;
      continue;
    }
    const hidden = /^<(script|style)(?![a-z0-9-])/.exec(lower.slice(lt, lt + 8))?.[1];
    if (hidden) {
      const close = lower.indexOf(`</${hidden}`, lt);
      const end = close < 0 ? -1 : html.indexOf(">", close);
      parts.push(" ");
      i = end < 0 ? html.length : end + 1;
      continue;
    }
    const gt = html.indexOf(">", lt + 1);
    if (gt < 0) {
      parts.push(html.slice(lt));
      break;
    }
    parts.push(" ");
    i = gt + 1;
  }
  return decodeEntities(parts.join(""));
}

const NAMED_ENTITIES: Readonly<Record<string, string>> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: " " };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z]{2,8});/gi, (whole, name: string) => {
    if (name[0] === "#") {
      const code = name[1] === "x" || name[1] === "X" ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : " ";
    }
    return NAMED_ENTITIES[name.toLowerCase()] ?? whole;
  });
}

function addUrlHost(out: TokenSet, authority: string): void {
  const host = authority.replace(/^[^@]*@/, "").replace(/:\d*$/, "").toLowerCase();
  if (host === "") return;
  if (/^\d+(\.\d+){3}$/.test(host)) out.add("url:ip-address");
  else {
    out.add(`url:${host}`);
    out.add(`url:${domainSuffix(host, 2)}`);
  }
}

/** Body words with `prefix`; URLs become host tokens, long words a "skip" token (SpamBayes' trick). */
function addWords(out: TokenSet, prefix: string, text: string): void {
  for (const m of text.matchAll(/\bhttps?:\/\/([^\s"'<>/?#]+)/gi)) addUrlHost(out, m[1]!);
  for (const w of words(text)) {
    if (out.full) return;
    out.add(prefix + w);
  }
}

const WORD_START = /[\p{L}\p{N}$]/u;
const WORD_END = /[\p{L}\p{N}%$]/u;

/** A word without leading punctuation (a "$" stays) and trailing punctuation ("%" and "$" stay). */
function trimWord(raw: string): string {
  if (isAsciiAlnum(raw.charCodeAt(0)) && isAsciiAlnum(raw.charCodeAt(raw.length - 1))) return raw; // the usual case, cheaply
  const chars = [...raw];
  let start = 0;
  let end = chars.length;
  while (start < end && !WORD_START.test(chars[start]!)) start++;
  while (end > start && !WORD_END.test(chars[end - 1]!)) end--;
  return start === 0 && end === chars.length ? raw : chars.slice(start, end).join("");
}

function isAsciiAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** Lowercased words of a text: 3-12 characters kept, longer ones summarised, shorter ones dropped. */
function* words(text: string): Generator<string> {
  for (const raw of text.split(/\s+/)) {
    const w = trimWord(raw).toLowerCase();
    if (w.length < MIN_WORD) continue;
    if (w.length <= MAX_WORD) yield w;
    else if (w.length <= 254 && /^[^@]+@[^@.]+(?:\.[^@.]+)*\.[a-z]{2,}$/.test(w)) yield `email:${w.slice(w.indexOf("@") + 1)}`;
    else if (!/^https?:/.test(w)) yield `skip:${w[0]}${Math.floor(w.length / 10) * 10}`;
  }
}
