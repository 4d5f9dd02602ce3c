// Unit tests of the [spam] block's DNSBL, rspamd and greylisting keys: defaults, time spans with units,
// and the error messages that name the key.
import { test } from "node:test";
import assert from "node:assert/strict";
import { validateConfig } from "./load.js";

const spam = (block: Record<string, unknown>) => validateConfig({ spam: block }, null).spam;

test("defaults: no lists, loopback exempt, no rspamd, greylisting off with a 5-minute delay", () => {
  const s = validateConfig({}, null).spam;
  assert.deepEqual(s.dnsbl, []);
  assert.deepEqual(s.dnswl, []);
  assert.deepEqual(s.exempt_networks, ["127.0.0.0/8", "::1/128"]);
  assert.equal(s.dnsbl_timeout, 5);
  assert.equal(s.rspamd, "");
  assert.equal(s.rspamd_timeout, 15);
  assert.equal(s.greylisting, false);
  assert.equal(s.greylist_delay, 300);
  assert.equal(s.greylist_max_age, 36 * 86400);
  assert.equal(s.greylist_retry_window, 2 * 86400);
  assert.equal(s.greylist_auto_whitelist, 5);
});

test("time spans: seconds, or a number with s, m, h or d", () => {
  assert.equal(spam({ greylist_delay: 90 }).greylist_delay, 90);
  assert.equal(spam({ greylist_delay: "90s" }).greylist_delay, 90);
  assert.equal(spam({ greylist_delay: "5m" }).greylist_delay, 300);
  assert.equal(spam({ greylist_retry_window: "12h" }).greylist_retry_window, 43200);
  assert.equal(spam({ greylist_max_age: "40d" }).greylist_max_age, 40 * 86400);
  for (const bad of ["5x", "m", "-5m", "1.5m", -1, 2.5])
    assert.throws(() => spam({ greylist_delay: bad }), /spam\.greylist_delay.*time span/s, String(bad));
});

test("bad values name the key", () => {
  assert.throws(() => spam({ dnsbl: ["not a zone"] }), /spam\.dnsbl/);
  assert.throws(() => spam({ exempt_networks: ["10.0.0.0/33"] }), /spam\.exempt_networks/);
  assert.throws(() => spam({ rspamd: "https://127.0.0.1:11333" }), /spam\.rspamd.*http:\/\//s);
  assert.throws(() => spam({ rspamd: "127.0.0.1:11333" }), /spam\.rspamd/);
  assert.throws(() => spam({ rspamd_timeout: 0 }), /spam\.rspamd_timeout/);
  assert.throws(() => spam({ greylisting: "yes" }), /spam\.greylisting/);
  assert.throws(() => spam({ dnsbl_tiemout: 1 }), /dnsbl_tiemout/);
  assert.equal(spam({ rspamd: "http://127.0.0.1:11333" }).rspamd, "http://127.0.0.1:11333");
});
