// Unit tests for address and path parsing (RFC 5321 §4.1.2, RFC 6531).
import { test } from "node:test";
import assert from "node:assert/strict";
import { foldCase, canonical, isValidDomain, parseAddress, parsePath } from "./address.js";

test("paths", () => {
  assert.deepEqual(parsePath("<alice@example.com>"), { local: "alice", domain: "example.com" });
  assert.equal(parsePath("<>"), "null-path");
  assert.deepEqual(parsePath("<@relay.a,@relay.b:bob@example.com>"), { local: "bob", domain: "example.com" });
  assert.deepEqual(parsePath('<"john doe"@example.com>'), { local: '"john doe"', domain: "example.com" });
  assert.deepEqual(parsePath("<user@[127.0.0.1]>"), { local: "user", domain: "[127.0.0.1]" });
  assert.deepEqual(parsePath("<jürgen@bücher.example>"), { local: "jürgen", domain: "bücher.example" });
});

test("bad paths are null, never exceptions", () => {
  for (const bad of ["alice@example.com", "<alice>", "<@example.com>", "<a..b@x.com>", "<.a@x.com>", "<a@-x.com>", "<a@x..com>",
    "<a b@x.com>", "<a@x.com", "<a@[300.1.1.1]>", "<" + "a".repeat(65) + "@x.com>", "<a@" + "b".repeat(64) + ".com>", '<"a@x.com>', "<@x:>"]) {
    assert.equal(parsePath(bad), null, bad);
  }
});

test("domains", () => {
  assert.equal(isValidDomain("localhost"), true);
  assert.equal(isValidDomain("[IPv6:::1]"), true);
  assert.equal(isValidDomain("a_b.com"), false);
  assert.equal(isValidDomain(""), false);
});

test("canonical form lowercases both parts", () => {
  assert.equal(canonical(parseAddress("Alice@LocalHost")!), "alice@localhost");
});

test("a quoted local part that needs no quotes is returned unquoted (RFC 5321 4.1.2)", () => {
  assert.deepEqual(parsePath('<"alice"@localhost>'), { local: "alice", domain: "localhost" });
  assert.deepEqual(parsePath('<"a.b"@localhost>'), { local: "a.b", domain: "localhost" });
  assert.deepEqual(parsePath('<"\\a\\l\\i\\c\\e"@localhost>'), { local: "alice", domain: "localhost" });
  // Quotes that are needed stay.
  assert.deepEqual(parsePath('<"a b"@localhost>'), { local: '"a b"', domain: "localhost" });
  assert.deepEqual(parsePath('<"a..b"@localhost>'), { local: '"a..b"', domain: "localhost" });
  assert.deepEqual(parsePath('<".a"@localhost>'), { local: '".a"', domain: "localhost" });
  assert.deepEqual(parsePath('<""@localhost>'), { local: '""', domain: "localhost" });
});

test("canonical never folds non-ASCII into ASCII: U+212A KELVIN SIGN and U+0130 stay; Ü still becomes ü", () => {
  assert.equal(canonical(parseAddress("\u212Aate@LOCALHOST")!), "\u212Aate@localhost");
  assert.equal(foldCase("\u0130STANBUL"), "\u0130stanbul");
  assert.equal(canonical(parseAddress("JÜRGEN@Bücher.Example")!), "jürgen@bücher.example");
  assert.equal(foldCase("ΣΑΣ"), "σασ");
});
