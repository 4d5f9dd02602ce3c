// Unit tests for DATA decoding: unstuffing, the only true end (CRLF.CRLF), smuggling variants,
// bare CR/LF handling, and chunk boundaries anywhere (fed 1 byte at a time and at random cuts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { DotDecoder, type BareMode } from "./dot-decoder.js";

function decode(input: string | Buffer, chunkSizes: number[] | null = null, mode: BareMode = "normalize") {
  const buf = typeof input === "string" ? Buffer.from(input, "latin1") : input;
  const d = new DotDecoder(mode);
  const out: Buffer[] = [];
  let pos = 0;
  let k = 0;
  while (pos < buf.length) {
    const n = chunkSizes ? chunkSizes[k++ % chunkSizes.length]! : buf.length;
    const chunk = buf.subarray(pos, pos + n);
    const r = d.feed(chunk, (p) => out.push(Buffer.from(p)));
    pos += r.consumed;
    if (r.done) return { content: Buffer.concat(out).toString("latin1"), rest: buf.subarray(pos).toString("latin1"), done: true, d };
  }
  return { content: Buffer.concat(out).toString("latin1"), rest: "", done: false, d };
}

const splits = [null, [1], [2], [3], [7], [1, 5, 2]];

test("plain message ends at CRLF.CRLF and keeps its last CRLF", () => {
  for (const s of splits) {
    const r = decode("Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n", s);
    assert.equal(r.done, true);
    assert.equal(r.content, "Subject: x\r\n\r\nhello\r\n");
    assert.equal(r.rest, "QUIT\r\n");
  }
});

test("empty message", () => {
  for (const s of splits) assert.deepEqual([decode(".\r\n", s).content, decode(".\r\n", s).done], ["", true]);
});

test("dot-stuffing is removed only at a real line start", () => {
  for (const s of splits) {
    const r = decode("..x\r\n...\r\na.b\r\n..\r\n.\r\n", s);
    assert.equal(r.content, ".x\r\n..\r\na.b\r\n.\r\n");
    assert.equal(r.d.size, r.content.length);
  }
});

test("smuggling: fake ends with bare LF or CR never end the data (normalize)", () => {
  const tail = "MAIL FROM:<evil@x>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\nsmuggled\r\n";
  const cases: [string, string][] = [
    ["\n.\n", "\r\n.\r\n"],
    ["\n.\r\n", "\r\n.\r\n"],
    ["\r.\r", "\r\n.\r\n"],
    ["\r\n.\n", "\r\n.\r\n"],
    ["\r\n.\r", "\r\n\r\n"],
  ];
  for (const [fake, normalized] of cases) {
    for (const s of splits) {
      const r = decode(`body${fake}${tail}.\r\nNEXT`, s);
      assert.equal(r.done, true, JSON.stringify(fake));
      assert.equal(r.rest, "NEXT", JSON.stringify(fake));
      assert.equal(r.d.bareSeen, true);
      assert.equal(r.content, `body${normalized}${tail}`, JSON.stringify({ fake, s }));
      assert.ok(!/[^\r]\n/.test(r.content) && !/\r[^\n]/.test(r.content), "only CRLF line ends remain");
    }
  }
});

test("reject mode flags bare line ends and leaves them as they were", () => {
  const r = decode("a\nb\rc\r\n.\r\n", null, "reject");
  assert.equal(r.done, true);
  assert.equal(r.d.bareSeen, true);
  assert.equal(r.content, "a\nb\rc\r\n");
  const clean = decode("a\r\nb\r\n.\r\n", [1], "reject");
  assert.equal(clean.d.bareSeen, false);
});

test("binary and 8-bit content passes unchanged", () => {
  const bytes = Buffer.from([0xe9, 0x00, 0xff, 0x2e, 0x0d, 0x0a, 0xc3, 0xa9, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a]);
  const r = decode(bytes, [1]);
  assert.equal(r.done, true);
  assert.deepEqual(Buffer.from(r.content, "latin1"), bytes.subarray(0, 10));
});

test("round trip: random CRLF content, stuffed, decodes back at any chunking", () => {
  let seed = 42;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const alphabet = ["a", ".", "..", " ", "x.", "\u00e9"];
  for (let iter = 0; iter < 200; iter++) {
    const lines: string[] = [];
    for (let i = rnd(8); i > 0; i--) {
      let l = "";
      for (let j = rnd(5); j > 0; j--) l += alphabet[rnd(alphabet.length)];
      lines.push(l);
    }
    const original = lines.map((l) => l + "\r\n").join("");
    const stuffed = lines.map((l) => (l.startsWith(".") ? "." + l : l) + "\r\n").join("") + ".\r\n";
    const r = decode(stuffed, [1 + rnd(9), 1 + rnd(3)]);
    assert.equal(r.done, true);
    assert.equal(r.content, original);
    assert.equal(r.d.bareSeen, false);
  }
});

test("without the end the decoder keeps waiting", () => {
  const r = decode("abc\r\n.", [2]);
  assert.equal(r.done, false);
  assert.equal(r.content, "abc\r\n");
});
