// Unit tests for address and path parsing (RFC 5321 §4.1.2, RFC 6531).
import { test } from "node:test";
import assert from "node:assert/strict";
import { canonical, isValidDomain, parseAddress, parsePath } from "./address.js";

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
