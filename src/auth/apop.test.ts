// Unit tests of APOP (RFC 1939 §7): the RFC's own digest example, greeting timestamps unique per
// connection, and digest checks that reject malformed input.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ApopTimestamps, apopDigest, checkApopDigest } from "./apop.js";

test("the digest of RFC 1939's example", () => {
  assert.equal(apopDigest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf"), "c4c9334bac560ecc979e58001b3e22fb");
});

test("checkApopDigest accepts the digest in either case and nothing else", () => {
  const ts = "<1896.697170952@dbc.mtview.ca.us>";
  assert.equal(checkApopDigest(ts, "tanstaaf", "c4c9334bac560ecc979e58001b3e22fb"), true);
  assert.equal(checkApopDigest(ts, "tanstaaf", "C4C9334BAC560ECC979E58001B3E22FB"), true);
  assert.equal(checkApopDigest(ts, "other", "c4c9334bac560ecc979e58001b3e22fb"), false);
  assert.equal(checkApopDigest(ts, "tanstaaf", "c4c9334bac560ecc979e58001b3e22f"), false);
  assert.equal(checkApopDigest(ts, "tanstaaf", "zz"), false);
  assert.equal(checkApopDigest(ts, "tanstaaf", ""), false);
});

test("timestamps carry pid, counter, time and host, and never repeat", () => {
  const stamps = new ApopTimestamps("pop.example", 4242, () => 1000);
  const a = stamps.next();
  const b = stamps.next();
  assert.equal(a, "<4242.1.1000@pop.example>");
  assert.equal(b, "<4242.2.1000@pop.example>");
  const real = new ApopTimestamps("h");
  const seen = new Set(Array.from({ length: 1000 }, () => real.next()));
  assert.equal(seen.size, 1000);
});
