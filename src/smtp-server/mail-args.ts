// Parses the arguments of MAIL FROM and RCPT TO (RFC 5321 §4.1.1.2-3): a path in angle brackets
// and ESMTP parameters (RFC 5321 §4.1.2 esmtp-param). A space after the colon is tolerated, as
// common clients send it. Returns a reply instead of throwing for every malformed input.
import { reply, type Reply } from "../core/reply.js";
import { printable } from "../protocol/wire-text.js";

export interface MailArgs {
  /** The path text including its angle brackets. */
  readonly path: string;
  /** Parameters keyed by upper-case keyword; null for a keyword without value. */
  readonly params: ReadonlyMap<string, string | null>;
}

const KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
const VALUE = /^[\x21-\x3c\x3e-\x7e\u0080-\uffff]+$/;

export function parseMailArgs(arg: string, prefix: "FROM:" | "TO:"): MailArgs | Reply {
  const verb = prefix === "FROM:" ? "MAIL FROM:<address>" : "RCPT TO:<address>";
  if (arg.slice(0, prefix.length).toUpperCase() !== prefix) return reply(501, "5.5.4", `Syntax: ${verb}`);
  let rest = arg.slice(prefix.length).replace(/^ +/, "");
  if (!rest.startsWith("<")) return reply(501, "5.1.7", `Syntax: ${verb} (the address must be in angle brackets)`);
  // Find the closing ">" outside a quoted local part.
  let end = -1;
  let quoted = false;
  for (let i = 1; i < rest.length; i++) {
    const c = rest[i];
    if (c === "\\" && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (c === ">" && !quoted) {
      end = i;
      break;
    }
  }
  if (end < 0) return reply(501, "5.1.7", `Syntax: ${verb} (missing ">")`);
  const path = rest.slice(0, end + 1);
  rest = rest.slice(end + 1);
  const params = new Map<string, string | null>();
  if (rest !== "" && !rest.startsWith(" ")) return reply(501, "5.5.4", `Syntax: ${verb} (junk after the address)`);
  for (const token of rest.split(" ")) {
    if (token === "") continue;
    const eq = token.indexOf("=");
    const key = (eq < 0 ? token : token.slice(0, eq)).toUpperCase();
    const value = eq < 0 ? null : token.slice(eq + 1);
    if (!KEYWORD.test(key) || (value !== null && !VALUE.test(value))) return reply(501, "5.5.4", `Bad parameter syntax: ${printable(token)}`);
    // A flag repeated changes nothing, and Python's smtplib sends "SMTPUTF8 SMTPUTF8" when the caller
    // asks for it and the addresses need it too; a keyword with a value may appear only once.
    if (params.has(key) && (value !== null || params.get(key) !== null)) return reply(501, "5.5.4", `Parameter given twice: ${printable(key)}`);
    params.set(key, value);
  }
  return { path, params };
}

/** True when a parser returned a refusal instead of its value. */
export function isReply<T extends object>(x: T | Reply): x is Reply {
  return (x as Reply).code !== undefined;
}
