// Reads the addresses out of an address-list header value (To, Cc, Bcc: RFC 5322 §3.4, with the
// obsolete forms of §4.4): display names, comments, quoted strings, angle addresses with an ignored
// source route, and groups. Trusts nothing: unbalanced quotes, comments or brackets are an error.
// It only finds addr-specs; checking each one (and qualifying a bare "root") is the caller's job.

export type AddressListResult =
  | { readonly kind: "ok"; readonly addresses: readonly string[] }
  | { readonly kind: "error"; readonly reason: string };

type Token =
  | { readonly kind: "word"; readonly text: string }
  | { readonly kind: "angle"; readonly text: string }
  | { readonly kind: "special"; readonly text: "," | ":" | ";" | "@" | "." };

/** The addr-specs of an (unfolded) address list, in order; "" and empty groups give none. */
export function parseAddressList(value: string): AddressListResult {
  const tokens = tokenize(value);
  if (typeof tokens === "string") return { kind: "error", reason: tokens };
  const addresses: string[] = [];
  let words: string[] = [];
  let angle: string | null = null;
  let inGroup = false;
  const flush = (): void => {
    const addr = angle ?? words.join("");
    words = [];
    angle = null;
    if (addr !== "") addresses.push(addr);
  };
  for (const t of tokens) {
    if (t.kind === "angle") {
      if (angle !== null) return { kind: "error", reason: "two <...> in one address" };
      angle = t.text;
      continue;
    }
    if (t.kind === "word" || t.text === "@" || t.text === ".") {
      if (angle !== null) return { kind: "error", reason: `text after <${angle}>` };
      words.push(t.text);
      continue;
    }
    if (t.text === ",") flush();
    else if (t.text === ":") {
      // "Friends: a@x, b@y;" — the words before the colon are the group's name.
      if (inGroup || angle !== null) return { kind: "error", reason: "unexpected \":\"" };
      inGroup = true;
      words = [];
    } else {
      if (!inGroup) return { kind: "error", reason: "\";\" outside a group" };
      flush();
      inGroup = false;
    }
  }
  flush();
  return { kind: "ok", addresses };
}

function tokenize(s: string): Token[] | string {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === " " || c === "\t" || c === "\r" || c === "\n") {
      i++;
    } else if (c === "(") {
      const end = commentEnd(s, i);
      if (end === null) return "unclosed comment";
      i = end;
    } else if (c === '"') {
      const end = quotedEnd(s, i);
      if (end === null) return "unclosed quoted string";
      out.push({ kind: "word", text: s.slice(i, end) });
      i = end;
    } else if (c === "<") {
      const inner = angleAddress(s, i);
      if (inner === null) return "unclosed <";
      out.push({ kind: "angle", text: inner.text });
      i = inner.end;
    } else if (c === "," || c === ":" || c === ";" || c === "@" || c === ".") {
      out.push({ kind: "special", text: c });
      i++;
    } else if (c === ">" || c === ")" || c === "[" || c === "]" || c === "\\") {
      if (c === "[") {
        // A domain literal: [192.0.2.1]
        const end = s.indexOf("]", i);
        if (end < 0) return "unclosed [";
        out.push({ kind: "word", text: s.slice(i, end + 1) });
        i = end + 1;
      } else return `unexpected "${c}"`;
    } else {
      let j = i;
      while (j < s.length && !/[\s()"<>,:;@.[\]\\]/.test(s[j]!)) j++;
      out.push({ kind: "word", text: s.slice(i, j) });
      i = j;
    }
  }
  return out;
}

/** The addr-spec inside <...> starting at `start`, without white space, comments or a source route. */
function angleAddress(s: string, start: number): { text: string; end: number } | null {
  let text = "";
  let i = start + 1;
  while (i < s.length && s[i] !== ">") {
    const c = s[i]!;
    if (c === '"') {
      const end = quotedEnd(s, i);
      if (end === null) return null;
      text += s.slice(i, end);
      i = end;
    } else if (c === "(") {
      const end = commentEnd(s, i);
      if (end === null) return null;
      i = end;
    } else {
      if (!/\s/.test(c)) text += c;
      i++;
    }
  }
  if (i >= s.length) return null;
  // Obsolete source route: <@a.example,@b.example:user@c.example>
  if (text.startsWith("@")) text = text.slice(text.indexOf(":") + 1);
  return { text, end: i + 1 };
}

/** Index just after the quoted string starting at `start` (backslash escapes); null if unclosed. */
function quotedEnd(s: string, start: number): number | null {
  let j = start + 1;
  for (; j < s.length && s[j] !== '"'; j++) if (s[j] === "\\") j++;
  return j >= s.length ? null : j + 1;
}

/** Index just after the (possibly nested) comment starting at `start`; null if unclosed. */
function commentEnd(s: string, start: number): number | null {
  let depth = 0;
  for (let i = start; i < s.length; i++) {
    if (s[i] === "\\") i++;
    else if (s[i] === "(") depth++;
    else if (s[i] === ")" && --depth === 0) return i + 1;
  }
  return null;
}
