// Unit tests of LfLineEnds: CRLF → LF across any chunk split, bare CR and bare LF kept.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { LfLineEnds } from "./lf-line-ends.js";

function convert(chunks: Buffer[]): string {
  const c = new LfLineEnds();
  const out = chunks.flatMap((ch) => c.feed(ch));
  return Buffer.concat([...out, ...c.end()]).toString("latin1");
}

test("CRLF becomes LF; a bare CR and a bare LF stay; a CR at a chunk end waits for the next chunk", () => {
  assert.equal(convert([Buffer.from("a\r\nb\rc\nd\r"), Buffer.from("\ne\r"), Buffer.from("f\r")]), "a\nb\rc\nd\ne\rf\r");
  assert.equal(convert([Buffer.from("\r"), Buffer.alloc(0), Buffer.from("\n")]), "\n");
});

test("any split of any bytes gives the same as converting the whole", () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom("a", "\r", "\n", "."), { maxLength: 60 }), fc.array(fc.nat(60), { maxLength: 6 }), (chars, cuts) => {
      const text = chars.join("");
      const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((x, y) => x - y);
      const chunks: Buffer[] = [];
      let prev = 0;
      for (const p of [...points, text.length]) {
        chunks.push(Buffer.from(text.slice(prev, p), "latin1"));
        prev = p;
      }
      assert.equal(convert(chunks), text.replace(/\r\n/g, "\n"));
    }),
  );
});
