// Unit tests of header-section parsing for sendmail: where the section ends (empty line, non-field
// line, more input needed), folded fields, and removing Bcc with its continuation lines.
import { test } from "node:test";
import assert from "node:assert/strict";
import { headerFields, headerSectionEnd, withoutFields } from "./header-fields.js";

const b = (s: string) => Buffer.from(s);

test("the section ends after the empty line (CRLF or LF)", () => {
  assert.equal(headerSectionEnd(b("A: 1\r\nB: 2\r\n\r\nbody"), false), 14);
  assert.equal(headerSectionEnd(b("A: 1\nB: 2\n\nbody"), false), 11);
  assert.equal(headerSectionEnd(b("\nbody"), false), 1);
});

test("a line that is not a field ends the section before it", () => {
  assert.equal(headerSectionEnd(b("A: 1\nnot a field\n"), false), 5);
  assert.equal(headerSectionEnd(b("just text\n"), false), 0);
  assert.equal(headerSectionEnd(b(" starts with space\n"), false), 0);
});

test("more input is needed until a line is decided; at the end of input everything is header", () => {
  assert.equal(headerSectionEnd(b("A: 1\nSubj"), false), null);
  assert.equal(headerSectionEnd(b("A: 1\n"), false), null);
  assert.equal(headerSectionEnd(b("A: 1\r\n\r"), false), null);
  assert.equal(headerSectionEnd(b("A: 1\nSubj"), true), 9);
});

test("fields have lower-cased names and unfolded values", () => {
  const h = b("To: a@x.test,\r\n  b@x.test\r\nSUBJECT : hi\r\n\r\n");
  const f = headerFields(h);
  assert.deepEqual(f.map((x) => [x.name, x.value]), [["to", "a@x.test,  b@x.test"], ["subject", "hi"]]);
});

test("Bcc is removed with its folded lines; everything else stays byte for byte", () => {
  const h = b("To: a@x.test\nBcc: secret@x.test,\n\tother@x.test\nSubject: s\nbcc: more@x.test\n\n");
  const out = Buffer.concat(withoutFields(h, headerFields(h), new Set(["bcc"]))).toString();
  assert.equal(out, "To: a@x.test\nSubject: s\n\n");
});
