// Unit tests of the SASL PLAIN decoder (RFC 4616) used by POP3 AUTH (RFC 5034): good messages,
// an authzid equal to the user, and every malformed shape rejected.
import { test } from "node:test";
import assert from "node:assert/strict";
import { decodePlain } from "./sasl-plain.js";

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

test("decodes user and password, with an empty or matching authzid", () => {
  assert.deepEqual(decodePlain(b64("\0alice@example.test\0pass word")), { user: "alice@example.test", password: "pass word" });
  assert.deepEqual(decodePlain(b64("Alice@Example.test\0alice@example.test\0pw")), { user: "alice@example.test", password: "pw" });
});

test("rejects acting as another user, missing fields and bad base64", () => {
  assert.equal(decodePlain(b64("bob@example.test\0alice@example.test\0pw")), null);
  assert.equal(decodePlain(b64("\0alice@example.test")), null);
  assert.equal(decodePlain(b64("\0\0pw")), null);
  assert.equal(decodePlain(b64("\0alice@example.test\0")), null);
  assert.equal(decodePlain(b64("a\0b\0c\0d")), null);
  assert.equal(decodePlain("not base64!"), null);
  assert.equal(decodePlain("abc"), null);
  assert.equal(decodePlain(""), null);
});

test("rejects what the lenient decoder let through: invalid UTF-8, set pad bits, an authzid that only toLowerCase matches", () => {
  assert.equal(decodePlain(Buffer.from([0, 0x61, 0xff, 0, 0x70]).toString("base64")), null);
  assert.equal(decodePlain("AGFsaWNlAHNlY3JldB=="), null);
  assert.equal(decodePlain(b64("\u212Aate\0kate\0pw")), null);
  assert.deepEqual(decodePlain("AGFsaWNlAHNlY3JldA=="), { user: "alice", password: "secret" });
});
