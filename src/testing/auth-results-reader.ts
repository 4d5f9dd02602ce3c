// Reads an Authentication-Results value as an RFC 8601 §2.2 parser would, for tests that check no outside
// text could add a result: quoted-strings and comments (nested, with quoted-pairs) are skipped.

/** The method of each resinfo after the authserv-id, e.g. "spf,dkim,dmarc,arc". */
export function resinfoMethods(value: string): string {
  let plain = "";
  let depth = 0;
  let quote = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === "\\" && (quote || depth > 0)) {
      i++;
      continue;
    }
    if (quote) quote = c !== '"';
    else if (depth > 0) depth += c === "(" ? 1 : c === ")" ? -1 : 0;
    else if (c === '"') quote = true;
    else if (c === "(") depth = 1;
    else plain += c;
  }
  return plain
    .split(";")
    .slice(1)
    .map((r) => r.trim().split("=")[0])
    .join(",");
}
