// Unit tests for MAIL FROM / RCPT TO argument parsing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isReply, parseMailArgs } from "./mail-args.js";

test("path and parameters", () => {
  const r = parseMailArgs("FROM:<a@b.c> SIZE=100 BODY=8BITMIME SMTPUTF8", "FROM:");
  assert.ok(!isReply(r));
  assert.equal(r.path, "<a@b.c>");
  assert.deepEqual([...r.params], [["SIZE", "100"], ["BODY", "8BITMIME"], ["SMTPUTF8", null]]);
});

test("lenient about case and a space after the colon", () => {
  const r = parseMailArgs("from: <a@b.c>", "FROM:");
  assert.ok(!isReply(r));
  assert.equal(r.path, "<a@b.c>");
});

test("a quoted local part may hold >", () => {
  const r = parseMailArgs('TO:<"a>b"@c.d>', "TO:");
  assert.ok(!isReply(r));
  assert.equal(r.path, '<"a>b"@c.d>');
});

test("syntax errors are 501 replies", () => {
  for (const [arg, prefix] of [["TO:<a@b>", "FROM:"], ["FROM:a@b", "FROM:"], ["FROM:<a@b", "FROM:"], ["FROM:<a@b>x", "FROM:"],
    ["FROM:<a@b> SIZE=1 SIZE=2", "FROM:"], ["FROM:<a@b> =x", "FROM:"]] as const) {
    const r = parseMailArgs(arg, prefix);
    assert.ok(isReply(r), arg);
    assert.equal(r.code, 501, arg);
  }
});
