// Unit tests of MessageEncoder and CrlfSizeCounter: byte-stuffing, bare LF → CRLF and the end
// marker, fed whole, in 1-byte chunks and in random chunks, checked against a whole-buffer reference.
// Covers RFC 1939 §3 (multi-line responses) and §7 (TOP).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { CrlfSizeCounter } from "../mailbox/crlf-size.js";
import { MessageEncoder } from "./message-encoder.js";

/** The whole-message reference: what RETR must send, terminator included. */
function reference(message: Buffer): string {
  let s = message.toString("latin1").replace(/(?<!\r)\n/g, "\r\n");
  s = s.replace(/(^|\n)\./g, "$1..");
  if (s !== "" && !s.endsWith("\n")) s += "\r\n";
  return s + ".\r\n";
}

/** The reference for TOP n m: headers, the blank line, then m body lines. */
function referenceTop(message: Buffer, bodyLines: number): string {
  const lines = message.toString("latin1").split(/(?<=\n)/);
  const blank = lines.findIndex((l) => l === "\n" || l === "\r\n");
  const kept = blank < 0 ? lines : lines.slice(0, blank + 1 + bodyLines);
  return reference(Buffer.from(kept.join(""), "latin1"));
}

function encode(message: Buffer, chunkSizes: (i: number) => number, bodyLines: number | null = null): string {
  const enc = new MessageEncoder(bodyLines);
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < message.length && !enc.done; i++) {
    const size = chunkSizes(i);
    out.push(enc.feed(message.subarray(at, at + size)));
    at += size;
  }
  out.push(enc.end());
  return Buffer.concat(out).toString("latin1");
}

const whole = () => Number.MAX_SAFE_INTEGER;
const oneByte = () => 1;

/** A small deterministic generator so failures can be replayed. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

function randomMessage(rand: () => number, length: number): Buffer {
  const alphabet = ["a", "b", ".", ".", "\r", "\n", "\n", "\r\n", "\r\n", " ", "..", "\r\n.\r\n"];
  let s = "";
  while (s.length < length) s += alphabet[Math.floor(rand() * alphabet.length)];
  return Buffer.from(s, "latin1");
}

const cases: [string, string, string][] = [
  ["CRLF message", "Subject: a\r\n\r\nbody\r\n", "Subject: a\r\n\r\nbody\r\n.\r\n"],
  ["bare LF becomes CRLF", "Subject: a\n\nbody\n", "Subject: a\r\n\r\nbody\r\n.\r\n"],
  ["dot lines are stuffed", ".\r\n..x\r\n.\n", "..\r\n...x\r\n..\r\n.\r\n"],
  ["a dot inside a line is left alone", "a.b\r\n", "a.b\r\n.\r\n"],
  ["a dot after a bare CR is not at a line start", "a\r.b\r\n", "a\r.b\r\n.\r\n"],
  ["no final line end gets one", "Subject: a\r\n\r\nlast", "Subject: a\r\n\r\nlast\r\n.\r\n"],
  ["a final bare CR stays and gets a CRLF", "x\r", "x\r\r\n.\r\n"],
  ["empty message", "", ".\r\n"],
  ["only a dot", ".", "..\r\n.\r\n"],
  ["a message looking like an end marker", "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"],
];

describe("MessageEncoder (RETR)", () => {
  for (const [name, input, expected] of cases) {
    test(name, () => {
      const message = Buffer.from(input, "latin1");
      assert.equal(encode(message, whole), expected);
      assert.equal(encode(message, oneByte), expected, "fed in 1-byte chunks");
      assert.equal(reference(message), expected, "the reference agrees");
    });
  }

  test("a CR and its LF split across chunks make one CRLF", () => {
    const enc = new MessageEncoder();
    const out = Buffer.concat([enc.feed(Buffer.from("a\r")), enc.feed(Buffer.from("\n.b\r")), enc.feed(Buffer.from("\n")), enc.end()]);
    assert.equal(out.toString("latin1"), "a\r\n..b\r\n.\r\n");
  });

  test("random messages in random chunks match the reference", () => {
    const rand = prng(1939);
    for (let round = 0; round < 400; round++) {
      const message = randomMessage(rand, Math.floor(rand() * 200));
      const expected = reference(message);
      assert.equal(encode(message, whole), expected, `round ${round} whole`);
      assert.equal(encode(message, oneByte), expected, `round ${round} 1-byte`);
      assert.equal(encode(message, () => 1 + Math.floor(rand() * 7)), expected, `round ${round} random chunks`);
    }
  });

  test("a message needing no change comes out unchanged", () => {
    const chunk = Buffer.from("plain line\r\nanother\r\n");
    const out = new MessageEncoder().feed(chunk);
    assert.equal(out.toString(), chunk.toString());
  });
});

describe("MessageEncoder (TOP)", () => {
  const message = Buffer.from("From: a\r\nSubject: b\r\n\r\nline 1\r\n.line 2\r\nline 3\r\n", "latin1");

  test("TOP n 0 sends the headers and the blank line", () => {
    assert.equal(encode(message, whole, 0), "From: a\r\nSubject: b\r\n\r\n.\r\n");
    assert.equal(encode(message, oneByte, 0), "From: a\r\nSubject: b\r\n\r\n.\r\n");
  });

  test("TOP n 2 adds two body lines, stuffed", () => {
    assert.equal(encode(message, oneByte, 2), "From: a\r\nSubject: b\r\n\r\nline 1\r\n..line 2\r\n.\r\n");
  });

  test("more lines than the body has sends the whole message", () => {
    assert.equal(encode(message, whole, 99), reference(message));
  });

  test("a blank line made of a bare LF or a CR+LF split across chunks ends the headers", () => {
    const lf = Buffer.from("A: 1\n\nbody\nmore\n", "latin1");
    assert.equal(encode(lf, oneByte, 1), "A: 1\r\n\r\nbody\r\n.\r\n");
    const enc = new MessageEncoder(0);
    const out = Buffer.concat([enc.feed(Buffer.from("A: 1\r\n\r")), enc.feed(Buffer.from("\nbody\r\n")), enc.end()]);
    assert.equal(out.toString("latin1"), "A: 1\r\n\r\n.\r\n");
    assert.equal(enc.done, true);
  });

  test("a message without a blank line is all headers", () => {
    const noBody = Buffer.from("A: 1\r\nB: 2", "latin1");
    assert.equal(encode(noBody, oneByte, 0), "A: 1\r\nB: 2\r\n.\r\n");
  });

  test("done becomes true once enough is sent, so the file need not be read further", () => {
    const enc = new MessageEncoder(1);
    enc.feed(Buffer.from("A: 1\r\n\r\nbody 1\r\nbody 2\r\n"));
    assert.equal(enc.done, true);
  });

  test("random messages and line counts match the reference", () => {
    const rand = prng(7);
    for (let round = 0; round < 300; round++) {
      const message = randomMessage(rand, Math.floor(rand() * 150));
      const lines = Math.floor(rand() * 5);
      const expected = referenceTop(message, lines);
      assert.equal(encode(message, oneByte, lines), expected, `round ${round} 1-byte, ${lines} lines`);
      assert.equal(encode(message, () => 1 + Math.floor(rand() * 9), lines), expected, `round ${round} random chunks`);
    }
  });
});

describe("CrlfSizeCounter", () => {
  test("counts every bare LF as two octets, across chunk boundaries", () => {
    const rand = prng(5);
    for (let round = 0; round < 200; round++) {
      const message = randomMessage(rand, Math.floor(rand() * 120));
      const withCrlf = Buffer.from(message.toString("latin1").replace(/(?<!\r)\n/g, "\r\n"), "latin1");
      const counter = new CrlfSizeCounter();
      for (let i = 0; i < message.length; i += 3) counter.feed(message.subarray(i, i + 3));
      assert.equal(counter.size, withCrlf.length, `round ${round}`);
    }
  });
});
