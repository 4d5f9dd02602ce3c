// Unit tests of the header gate: the header section is handed on whole and trimmed to the topmost DKIM
// signatures, the body untouched, however the content is cut into pieces (fast-check); too large is refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { HeaderGate } from "./header-gate.js";

function feed(gate: HeaderGate, content: Buffer, cuts: number[]): Buffer | "too large" {
  const out: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < content.length).sort((a, b) => a - b), content.length]) {
    const r = gate.add(content.subarray(from, cut));
    if (r.kind === "too large") return "too large";
    out.push(...r.pieces);
    from = cut;
  }
  out.push(...gate.end());
  return Buffer.concat(out);
}

const sig = (i: number): string => `DKIM-Signature: v=1; d=d${i}.test;\r\n\tb=AAAA${i}\r\n`;

test("keeps the topmost DKIM-Signature fields (folded lines with them), drops the rest, leaves the body alone", () => {
  const header = `${sig(1)}Received: x\r\n${sig(2)}dkim-signature : v=1; d=d3.test\r\n${sig(4)}From: a@b.test\r\n\r\n`;
  const gate = new HeaderGate(1000, 2);
  const out = feed(gate, Buffer.from(`${header}body\r\nDKIM-Signature: not a header\r\n`), []);
  assert.equal(out.toString(), `${sig(1)}Received: x\r\n${sig(2)}From: a@b.test\r\n\r\nbody\r\nDKIM-Signature: not a header\r\n`);
  assert.equal(gate.droppedSignatures, 2);
});

test("property: any cutting gives the same result; an empty first line is an empty header section", () => {
  const field = fc.oneof(
    fc.nat(50).map(sig),
    fc.constantFrom("From: a@b.test\r\n", "Subject: x\r\n  y\r\n", "X-Long: " + "z".repeat(300) + "\r\n"),
  );
  fc.assert(
    fc.property(fc.array(field, { maxLength: 12 }), fc.string({ maxLength: 40 }), fc.array(fc.nat(700), { maxLength: 8 }), fc.nat(4), (fields, body, cuts, max) => {
      const content = Buffer.from(`${fields.join("")}\r\n${body}`);
      let kept = 0;
      const expected = `${fields.filter((f) => !f.startsWith("DKIM-Signature") || ++kept <= max).join("")}\r\n${body}`;
      const gate = new HeaderGate(1 << 20, max);
      assert.equal(feed(gate, content, cuts).toString(), expected);
      assert.equal(gate.droppedSignatures, Math.max(0, kept - max));
    }),
    { numRuns: 300 },
  );
});

test("a header section longer than the limit is refused; exactly at the limit passes; a body of any size passes", () => {
  const section = (octets: number): string => `X: ${"a".repeat(octets - 7)}\r\n\r\n`; // octets long, empty line included
  for (const cuts of [[], [1], [50, 99], [98]]) {
    assert.equal(feed(new HeaderGate(100, 5), Buffer.from(section(100) + "b".repeat(1000)), cuts).toString(), section(100) + "b".repeat(1000));
    assert.equal(feed(new HeaderGate(100, 5), Buffer.from(section(101)), cuts), "too large");
    assert.equal(feed(new HeaderGate(100, 5), Buffer.from("X: " + "a".repeat(200)), cuts), "too large", "no empty line at all");
  }
  assert.equal(feed(new HeaderGate(100, 5), Buffer.from("X: y"), [1, 2]).toString(), "X: y", "all header, short: handed on at the end");
});
