// Whether a key's public half is published where verifiers look: the TXT record at
// <selector>._domainkey.<domain> (RFC 6376 §3.6.2), its strings joined, parsed as a tag list (§3.2),
// k= (default rsa) and p= (white space removed) compared with the key. For `petrel dkim check`.
// Trusts nothing in the answer; a DNS failure is its own result, never "missing".
import { publicKeyValue, recordName, type DkimKey } from "./dkim-key-store.js";

/** node:dns/promises' resolveTxt, or a test's. */
export type ResolveTxt = (name: string) => Promise<string[][]>;

export type PublishedState =
  | { readonly kind: "ok" }
  | { readonly kind: "missing"; readonly detail: string }
  | { readonly kind: "wrong"; readonly detail: string }
  | { readonly kind: "dns-error"; readonly detail: string };

/** c-ares codes that are answers: the name or the record type does not exist. */
const NO_RECORD = new Set(["ENOTFOUND", "ENODATA"]);

export async function checkPublished(key: Pick<DkimKey, "domain" | "selector" | "algorithm" | "privateKey">, resolveTxt: ResolveTxt): Promise<PublishedState> {
  const name = recordName(key);
  let answers: string[][];
  try {
    answers = await resolveTxt(name);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "";
    if (NO_RECORD.has(code)) return { kind: "missing", detail: `no TXT record at ${name}` };
    return { kind: "dns-error", detail: `${code || (err as Error).message} looking up ${name}; try again later` };
  }
  const dkim = answers.map((strings) => tags(strings.join(""))).filter((t) => t !== null && (t.get("v") ?? "DKIM1") === "DKIM1" && t.has("p"));
  if (dkim.length === 0) return { kind: "missing", detail: `no DKIM key record among the TXT records at ${name}` };
  if (dkim.length > 1) return { kind: "wrong", detail: `${dkim.length} DKIM records at ${name}: verifiers may take either; publish one` };
  const t = dkim[0]!;
  const k = (t.get("k") ?? "rsa").toLowerCase();
  if (k !== key.algorithm) return { kind: "wrong", detail: `the record says k=${k}, the key is ${key.algorithm}` };
  const p = t.get("p")!.replace(/\s+/g, "");
  if (p === "") return { kind: "wrong", detail: "the record has an empty p=: the key is revoked (RFC 6376 §3.6.1)" };
  if (p !== publicKeyValue(key.privateKey)) return { kind: "wrong", detail: "the record's p= is another key (an old one, or copied incompletely)" };
  return { kind: "ok" };
}

/** A tag-value list (RFC 6376 §3.2) as a map, or null when it is not one. */
function tags(text: string): Map<string, string> | null {
  const out = new Map<string, string>();
  for (const part of text.split(";")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq <= 0) return null;
    out.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  return out;
}
