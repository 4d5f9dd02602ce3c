// Unit tests for the login failure throttle with a fake clock: per-IP and per-account limits, the
// sliding window, and the exemption of an IP that logged in to the account recently.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FailureThrottle, ipKey } from "./failure-throttle.js";

function throttle(perIp: number, perAccount: number) {
  let now = 1_000_000;
  const t = new FailureThrottle({ perIp, perAccount, windowMs: 60_000 }, () => now);
  return { t, advance: (ms: number) => (now += ms) };
}

test("per account: many IPs guessing one account are held back after the limit, other accounts are not", () => {
  const { t, advance } = throttle(100, 3);
  for (let i = 1; i <= 3; i++) {
    assert.deepEqual(t.check(`10.0.0.${i}`, "alice@x"), { kind: "allowed" });
    t.failed(`10.0.0.${i}`, "alice@x");
  }
  assert.deepEqual(t.check("10.0.0.9", "alice@x"), { kind: "throttled", scope: "account" });
  assert.deepEqual(t.check("10.0.0.9", "bob@x"), { kind: "allowed" });
  advance(60_001);
  assert.deepEqual(t.check("10.0.0.9", "alice@x"), { kind: "allowed" }, "the window slid past the failures");
});

test("per IP: one IP guessing many accounts is held back, other IPs are not", () => {
  const { t } = throttle(3, 100);
  for (const user of ["a@x", "b@x", "c@x"]) t.failed("10.0.0.1", user);
  assert.deepEqual(t.check("10.0.0.1", "d@x"), { kind: "throttled", scope: "ip" });
  assert.deepEqual(t.check("10.0.0.2", "d@x"), { kind: "allowed" });
});

test("failures count in a sliding window: old ones expire one by one", () => {
  const { t, advance } = throttle(100, 2);
  t.failed("ip", "u");
  advance(30_000);
  t.failed("ip", "u");
  assert.equal(t.check("ip", "u").kind, "throttled");
  advance(30_001);
  assert.equal(t.check("ip", "u").kind, "allowed");
  t.failed("ip", "u");
  assert.equal(t.check("ip", "u").kind, "throttled");
});

test("an IP that logged in to the account recently is not locked out by others' guesses; the IP limit still applies", () => {
  const { t, advance } = throttle(5, 2);
  t.succeeded("192.0.2.7", "alice@x");
  t.failed("10.0.0.1", "alice@x");
  t.failed("10.0.0.2", "alice@x");
  assert.equal(t.check("10.0.0.3", "alice@x").kind, "throttled");
  assert.equal(t.check("192.0.2.7", "alice@x").kind, "allowed");
  for (let i = 0; i < 5; i++) t.failed("192.0.2.7", "other@x");
  assert.deepEqual(t.check("192.0.2.7", "alice@x"), { kind: "throttled", scope: "ip" });
  advance(60_001);
  assert.equal(t.check("192.0.2.7", "alice@x").kind, "allowed");
});

test("IPv6 clients are counted per /64", () => {
  const { t } = throttle(2, 100);
  t.failed("2001:db8:1:2::1", "a@x");
  t.failed("2001:db8:1:2:ffff:0:0:9", "b@x");
  assert.deepEqual(t.check("2001:0db8:0001:0002::abcd", "c@x"), { kind: "throttled", scope: "ip" });
  assert.deepEqual(t.check("2001:db8:1:3::1", "c@x"), { kind: "allowed" });
  assert.deepEqual(t.check("127.0.0.1", "c@x"), { kind: "allowed" });
  assert.equal(ipKey("::1"), "0:0:0:0::/64");
  assert.equal(ipKey("fe80::1"), "fe80:0:0:0::/64");
  assert.equal(ipKey("192.0.2.1"), "192.0.2.1");
});
