// Makes the DKIM-Signature fields for a message (RFC 6376 §5; Ed25519 RFC 8463): d= is the domain of
// the From: address exactly (so DMARC alignment is strict, RFC 7489 §3.1.1), one signature per key of
// that domain (RSA and Ed25519 both: dual signing), relaxed/relaxed, t= the signing time, no x= (the
// queue retries for days). Reads the content once, in one pass: the header section is kept (at most
// MAX_HEADER octets), the body only hashed (relaxed-canonicalization.ts), so memory does not grow with
// the message; a message whose From: domain has no key is not read past its header. Trusts nothing in
// the message: a missing, repeated or unparseable From: means no signature, with the reason.
import crypto from "node:crypto";
import { parseAddressList } from "../core/address-list.js";
import { parseAddress } from "../core/address.js";
import { headerFields, headerSectionEnd, type HeaderField } from "../spool/header-fields.js";
import { signingDomain, type DkimKey } from "./dkim-key-store.js";
import { RelaxedBodyHash, relaxedHeaderField } from "./relaxed-canonicalization.js";

/** Header sections longer than this are not signed (Postfix's header_size_limit is 100 KB). */
export const MAX_HEADER = 1024 * 1024;

export interface SignOptions {
  /** Field names to sign, each present instance (RFC 6376 §5.4.2: bottom-up). Must include From. */
  readonly headers: readonly string[];
  /** Field names listed once more than they occur, so an added field breaks the signature (§8.15). */
  readonly oversign: readonly string[];
  readonly now?: () => Date;
  /** When set, only a From: in this domain is signed (the envelope sender's, which submission ties to the user). */
  readonly fromDomainMustBe?: string;
}

export type SignResult =
  /** `fields`: the DKIM-Signature fields, each ending in CRLF, to put in front of the message. */
  | { readonly kind: "signed"; readonly domain: string; readonly selectors: readonly string[]; readonly fields: Buffer }
  | { readonly kind: "unsigned"; readonly reason: string };

/** Where a domain's keys come from (the key store, or a list in tests). */
export type KeysFor = (domain: string) => Promise<readonly DkimKey[]>;

interface Plan {
  readonly domain: string;
  readonly keys: readonly DkimKey[];
  readonly header: Buffer;
  readonly fields: readonly HeaderField[];
}

/** Signs `content` (the message as sent: CRLF line ends) with every key of its From: domain. */
export async function signMessage(content: AsyncIterable<Buffer>, keysFor: KeysFor, opts: SignOptions): Promise<SignResult> {
  /** What will be signed, from the header section; or why nothing is. */
  const plan = async (header: Buffer): Promise<Plan | SignResult> => {
    const fields = headerFields(header);
    const domain = fromDomain(fields);
    if (typeof domain !== "string") return domain;
    if (opts.fromDomainMustBe !== undefined && domain !== opts.fromDomainMustBe)
      return { kind: "unsigned", reason: `the From: domain ${domain} is not the envelope sender's domain ${opts.fromDomainMustBe || "(none)"}` };
    const keys = await keysFor(domain);
    if (keys.length === 0) return { kind: "unsigned", reason: `no DKIM key for ${domain}` };
    return { domain, keys, header, fields };
  };
  const tooLong: SignResult = { kind: "unsigned", reason: `header section longer than ${MAX_HEADER} octets` };
  const notField: SignResult = { kind: "unsigned", reason: "a line in the header section is not a header field" };
  let pending: Buffer = Buffer.alloc(0);
  let ready: Plan | null = null;
  let body: RelaxedBodyHash | null = null;
  for await (const chunk of content) {
    if (body) {
      body.update(chunk);
      continue;
    }
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    const end = headerSectionEnd(pending, false);
    if ((end ?? pending.length) > MAX_HEADER) return tooLong;
    if (end === null) continue;
    // A line that is not a field ended the section: a verifier would still read it as header.
    if (!endsWithEmptyLine(pending.subarray(0, end))) return notField;
    const p = await plan(pending.subarray(0, end));
    if (!("keys" in p)) return p; // leaving the loop closes the file
    ready = p;
    body = new RelaxedBodyHash();
    body.update(pending.subarray(end));
  }
  if (!ready) {
    // No empty line: the whole message is header, the body empty (RFC 5322 §2.1).
    if (pending.length > MAX_HEADER) return tooLong;
    if (headerSectionEnd(pending, true) !== pending.length) return notField;
    const p = await plan(pending);
    if (!("keys" in p)) return p;
    ready = p;
  }
  const bh = (body ?? new RelaxedBodyHash()).digest();
  const t = Math.floor((opts.now?.() ?? new Date()).getTime() / 1000);
  const { names, canonical } = signedHeaders(ready.header, ready.fields, opts);
  const fields = ready.keys.map((key) => signatureField(key, { names, canonical, bh, t }));
  return { kind: "signed", domain: ready.domain, selectors: ready.keys.map((k) => k.selector), fields: Buffer.from(fields.join(""), "latin1") };
}

/** The section ends with its empty line (or is only that line). */
function endsWithEmptyLine(header: Buffer): boolean {
  return /(?:^|\n)\r?\n$/.test(header.subarray(-3).toString("latin1"));
}

/** The signing domain from the one From: field, or why there is none. */
function fromDomain(fields: readonly HeaderField[]): string | SignResult {
  const from = fields.filter((f) => f.name === "from");
  if (from.length === 0) return { kind: "unsigned", reason: "no From: field" };
  if (from.length > 1) return { kind: "unsigned", reason: "more than one From: field" };
  const list = parseAddressList(from[0]!.value);
  if (list.kind === "error" || list.addresses.length === 0) return { kind: "unsigned", reason: "the From: field has no readable address" };
  const domains = new Set<string>();
  for (const text of list.addresses) {
    const a = parseAddress(text);
    const d = a ? signingDomain(a.domain) : null;
    if (!d) return { kind: "unsigned", reason: `the From: address ${JSON.stringify(text)} has no usable domain` };
    domains.add(d);
  }
  if (domains.size > 1) return { kind: "unsigned", reason: "the From: field names addresses in several domains" };
  return [...domains][0]!;
}

/**
 * The h= names and the canonical data of the fields they cover: for each configured name its instances
 * from the bottom up (RFC 6376 §5.4.2), then once more for an oversigned one (a name with no field left
 * stands for the null string, §5.4).
 */
function signedHeaders(header: Buffer, fields: readonly HeaderField[], opts: SignOptions): { names: string[]; canonical: string } {
  const oversign = new Set(opts.oversign.map((n) => n.toLowerCase()));
  const seen = new Set<string>();
  const names: string[] = [];
  let canonical = "";
  for (const name of opts.headers) {
    const lower = name.toLowerCase();
    if (seen.has(lower)) continue;
    seen.add(lower);
    const instances = fields.filter((f) => f.name === lower).reverse();
    for (const f of instances) {
      names.push(name);
      canonical += `${relaxedHeaderField(header.subarray(f.start, f.end).toString("latin1"))}\r\n`;
    }
    if (oversign.has(lower)) names.push(name);
  }
  return { names, canonical };
}

/** One DKIM-Signature field, folded below 78 columns, ending in CRLF (latin1 text). */
function signatureField(key: DkimKey, s: { names: readonly string[]; canonical: string; bh: string; t: number }): string {
  const tags = [`v=1`, `a=${key.algorithm}-sha256`, `c=relaxed/relaxed`, `d=${key.domain}`, `s=${key.selector}`, `t=${s.t}`];
  let text = "DKIM-Signature:";
  let line = text.length;
  const add = (piece: string, sep: string): void => {
    if (line + sep.length + piece.length > 76) {
      text += "\r\n\t";
      line = 1;
    } else {
      text += sep;
      line += sep.length;
    }
    text += piece;
    line += piece.length;
  };
  for (const t of tags) add(`${t};`, " ");
  // h= folded at its colons (FWS is allowed around them, RFC 6376 §3.5).
  add(`h=${s.names[0]}`, " ");
  for (const n of s.names.slice(1)) add(`:${n}`, "");
  text += ";";
  line++;
  add(`bh=${s.bh};`, " ");
  add("b=", " ");
  const data = Buffer.from(s.canonical + relaxedHeaderField(text), "latin1");
  const b =
    key.algorithm === "rsa"
      ? crypto.sign("sha256", data, key.privateKey)
      : crypto.sign(null, crypto.createHash("sha256").update(data).digest(), key.privateKey);
  const value = b.toString("base64");
  // The b= value folded in pieces; its white space is removed before verifying (§3.5).
  let first = Math.max(0, 76 - line);
  text += value.slice(0, first);
  for (; first < value.length; first += 72) text += `\r\n\t${value.slice(first, first + 72)}`;
  return `${text}\r\n`;
}
