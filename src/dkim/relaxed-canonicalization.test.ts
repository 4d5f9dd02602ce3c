// Relaxed canonicalization (RFC 6376 §3.4.2, §3.4.4): the RFC's own example, the edge cases of the
// body rules (trailing empty lines, a last line without CRLF, an empty body, a CR that is not a line
// end), and a property check against a whole-string reference with the input cut anywhere.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fc from "fast-check";
import { RelaxedBodyHash, relaxedHeaderField } from "./relaxed-canonicalization.js";

const sha = (s: string) => crypto.createHash("sha256").update(Buffer.from(s, "latin1")).digest("base64");

function hashOf(...parts: string[]): string {
  const h = new RelaxedBodyHash();
  for (const p of parts) h.update(Buffer.from(p, "latin1"));
  return h.digest();
}

/** The body rules applied to the whole string at once. */
function reference(body: string): string {
  const s = body.replace(/[ \t]+/g, " ").replace(/ \r\n/g, "\r\n").replace(/ $/, "").replace(/(\r\n)+$/, "");
  return s === "" ? "" : `${s}\r\n`;
}

describe("relaxed body canonicalization", () => {
  test("RFC 6376 §3.4.5's example body", () => {
    assert.equal(hashOf(" C \r\nD \t E\r\n\r\n\r\n"), sha(" C\r\nD E\r\n"));
  });

  test("an empty body hashes as no octets; a body of empty lines is empty too", () => {
    assert.equal(hashOf(), sha(""));
    assert.equal(hashOf("\r\n\r\n \t\r\n"), sha(""));
  });

  test("a last line without CRLF gets one; its trailing white space goes", () => {
    assert.equal(hashOf("abc  \t"), sha("abc\r\n"));
  });

  test("a CR not followed by LF is content, so white space before it stays (as one SP)", () => {
    assert.equal(hashOf("a  \rb\r\n"), sha("a \rb\r\n"));
    assert.equal(hashOf("a\r"), sha("a\r\r\n"));
  });

  test("property: any content cut anywhere hashes like the reference", () => {
    const text = fc.string({ unit: fc.constantFrom("a", "é", " ", "\t", "\r", "\n", "\r\n", "x"), maxLength: 60 });
    fc.assert(
      fc.property(text, fc.uniqueArray(fc.nat(), { maxLength: 6 }), (body, cutsRaw) => {
        const cuts = [...new Set(cutsRaw.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
        const parts = [0, ...cuts, body.length].slice(1).map((end, i, arr) => body.slice(i === 0 ? 0 : arr[i - 1], end));
        assert.equal(hashOf(...parts), sha(reference(body)), JSON.stringify(body));
      }),
      { numRuns: 500 },
    );
  });

  test("a body larger than the output buffer (one 200 KB line, then many short ones) hashes like the reference", () => {
    const body = `${"word  ".repeat(35_000)}\r\n${"x \t y\r\n".repeat(20_000)}\r\n`;
    assert.equal(hashOf(body.slice(0, 70_000), body.slice(70_000)), sha(reference(body)));
  });
});

describe("relaxed header canonicalization", () => {
  test("RFC 6376 §3.4.5's example header fields", () => {
    assert.equal(relaxedHeaderField("A: X\r\n"), "a:X");
    assert.equal(relaxedHeaderField("B : Y\t\r\n\tZ  \r\n"), "b:Y Z");
  });

  test("names are lowercased in ASCII only; UTF-8 values pass unchanged", () => {
    const value = Buffer.from("Grüße", "utf8").toString("latin1");
    assert.equal(relaxedHeaderField(`SUBJECT:  ${value}  \r\n`), `subject:${value}`);
  });
});
