// Unit tests of address-list parsing for sendmail -t (RFC 5322 §3.4): display names, comments,
// quoted strings, groups, source routes, bare names, and malformed lists.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseAddressList } from "./address-list.js";

const addrs = (s: string) => {
  const r = parseAddressList(s);
  assert.equal(r.kind, "ok", JSON.stringify(r));
  return (r as { addresses: readonly string[] }).addresses;
};

test("plain, named and commented addresses", () => {
  assert.deepEqual(addrs("a@x.test"), ["a@x.test"]);
  assert.deepEqual(addrs("Bob <bob@x.test>, \"Smith, Carol\" <carol@y.test>"), ["bob@x.test", "carol@y.test"]);
  assert.deepEqual(addrs("dave@x.test (Dave, at work), eve@x.test"), ["dave@x.test", "eve@x.test"]);
  assert.deepEqual(addrs("<@relay.test,@r2.test:frank@x.test>"), ["frank@x.test"]);
  assert.deepEqual(addrs('"john doe"@x.test'), ['"john doe"@x.test']);
});

test("groups give their members; empty groups and empty elements give none", () => {
  assert.deepEqual(addrs("Team: a@x.test, B <b@x.test>;, c@x.test"), ["a@x.test", "b@x.test", "c@x.test"]);
  assert.deepEqual(addrs("undisclosed-recipients:;"), []);
  assert.deepEqual(addrs(" , a@x.test ,, "), ["a@x.test"]);
  assert.deepEqual(addrs(""), []);
});

test("bare local names are kept for the caller to qualify", () => {
  assert.deepEqual(addrs("root, Admin <admin>"), ["root", "admin"]);
});

test("malformed lists are errors", () => {
  for (const bad of ['"unclosed <a@x.test>', "Bob <bob@x.test", "(comment a@x.test", "a@x.test;", "<a@x.test> <b@x.test>", "<a@x.test> junk"])
    assert.equal(parseAddressList(bad).kind, "error", bad);
});
