// Unit tests of sendmail's lone-dot rule (no -i): a line with a single "." ends the message, wherever
// the input is split; ".." and ". " are content; a fast-check property compares splits with the whole.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { LoneDotEnd } from "./lone-dot-end.js";

function run(pieces: string[]): string {
  const d = new LoneDotEnd();
  const out: Buffer[] = [];
  for (const p of pieces) out.push(...d.feed(Buffer.from(p, "latin1")));
  out.push(...d.end());
  return Buffer.concat(out).toString("latin1");
}

/** The rule on the whole input: cut before the first line that is ".", ".\r" at the end, or "." at the end. */
function reference(s: string): string {
  const m = /(^|\n)\.(\r?\n|\r?$)/.exec(s);
  return m ? s.slice(0, m.index + m[1]!.length) : s;
}

test("a lone dot line ends the message, LF or CRLF, at the start or later", () => {
  assert.equal(run(["a\n.\nafter\n"]), "a\n");
  assert.equal(run(["a\r\n.\r\nafter\r\n"]), "a\r\n");
  assert.equal(run([".\nafter\n"]), "");
  assert.equal(run(["a\n."]), "a\n");
});

test("dots that are not alone on their line are content", () => {
  for (const s of ["..\n", ". \n", "a.\n", "x\n.a\n", "x\n.\rb\n"]) assert.equal(run([s]), s);
});

test("splits anywhere give the same result", () => {
  assert.equal(run(["a\n", ".", "\nb"]), "a\n");
  assert.equal(run(["a\n.", "\r", "\nb"]), "a\n");
  assert.equal(run(["a\n.", "x\n"]), "a\n.x\n");
  fc.assert(
    fc.property(fc.array(fc.constantFrom("a", ".", "\n", "\r", " "), { maxLength: 40 }), fc.array(fc.nat(40), { maxLength: 5 }), (chars, cuts) => {
      const s = chars.join("");
      const at = [...new Set(cuts.filter((c) => c <= s.length))].sort((x, y) => x - y);
      const pieces: string[] = [];
      let from = 0;
      for (const c of at) (pieces.push(s.slice(from, c)), (from = c));
      pieces.push(s.slice(from));
      assert.equal(run(pieces), reference(s));
    }),
  );
});
