// Unit tests of greylisting with a fake clock: first try deferred 450 4.7.1 with the time left, a retry
// before the delay deferred again, after it passed and remembered; the retry window and max age expire
// entries; client networks (/24, /64) share triplets; auto-whitelisting after N passed retries; state
// survives a reopen of the database.
import { afterEach, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { Greylist, clientNetwork, normaliseSender, type GreylistOptions } from "./greylist.js";

let dir: string;
let now: number;
const open: Greylist[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-greylist-"));
  now = Date.UTC(2026, 0, 1);
});
afterEach(() => {
  for (const g of open.splice(0)) g.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const DAY = 86400;
function greylist(opts: Partial<GreylistOptions> = {}): Greylist {
  const g = new Greylist(dir, { delaySeconds: 300, maxAgeSeconds: 36 * DAY, retryWindowSeconds: 2 * DAY, autoWhitelist: 0, now: () => now, ...opts });
  open.push(g);
  return g;
}
const advance = (seconds: number) => (now += seconds * 1000);

test("first try: 450 4.7.1 with the delay; early retry: the time left; after the delay: passes", () => {
  const g = greylist();
  assert.deepEqual(g.check("192.0.2.7", "alice@example.org", "bob@example.test"), {
    kind: "defer",
    retryInSeconds: 300,
    reply: { code: 450, enhanced: "4.7.1", lines: ["Greylisted, try again in 300 seconds"] },
  });
  advance(120);
  const early = g.check("192.0.2.7", "alice@example.org", "bob@example.test");
  assert.equal(early.kind === "defer" && early.reply.lines[0], "Greylisted, try again in 180 seconds");
  advance(180);
  assert.deepEqual(g.check("192.0.2.7", "alice@example.org", "bob@example.test"), { kind: "pass", why: "retried" });
  advance(DAY);
  assert.deepEqual(g.check("192.0.2.7", "alice@example.org", "bob@example.test"), { kind: "pass", why: "known" });
});

test("each part of the triplet counts: another sender, recipient or network is greylisted anew", () => {
  const g = greylist();
  g.check("192.0.2.7", "alice@example.org", "bob@example.test");
  advance(300);
  assert.equal(g.check("192.0.2.7", "alice@example.org", "bob@example.test").kind, "pass");
  assert.equal(g.check("192.0.2.7", "mallory@example.org", "bob@example.test").kind, "defer");
  assert.equal(g.check("192.0.2.7", "alice@example.org", "carol@example.test").kind, "defer");
  assert.equal(g.check("198.51.100.7", "alice@example.org", "bob@example.test").kind, "defer");
});

test("a retry from another address of the same /24 (a server farm) counts; case and +tags of the sender do not matter", () => {
  const g = greylist();
  g.check("192.0.2.7", "Alice+list-123@Example.org", "Bob@Example.test");
  advance(301);
  assert.deepEqual(g.check("192.0.2.200", "alice+list-456@example.org", "bob@example.test"), { kind: "pass", why: "retried" });
});

test("IPv6 clients are grouped by /64", () => {
  const g = greylist();
  g.check("2001:db8:0:1::25", "a@example.org", "b@example.test");
  advance(300);
  assert.equal(g.check("2001:db8:0:1:ffff::1", "a@example.org", "b@example.test").kind, "pass");
  assert.equal(g.check("2001:db8:0:2::25", "a@example.org", "b@example.test").kind, "defer");
});

test("a retry after the retry window starts over", () => {
  const g = greylist();
  g.check("192.0.2.7", "a@example.org", "b@example.test");
  advance(2 * DAY + 1);
  const r = g.check("192.0.2.7", "a@example.org", "b@example.test");
  assert.equal(r.kind === "defer" && r.retryInSeconds, 300);
});

test("a passed triplet is forgotten after max age without mail, kept while mail flows", () => {
  const g = greylist({ maxAgeSeconds: 10 * DAY });
  g.check("192.0.2.7", "a@example.org", "b@example.test");
  advance(300);
  g.check("192.0.2.7", "a@example.org", "b@example.test");
  for (let i = 0; i < 5; i++) {
    advance(9 * DAY);
    assert.equal(g.check("192.0.2.7", "a@example.org", "b@example.test").kind, "pass", `day ${9 * (i + 1)}`);
  }
  advance(10 * DAY + 1);
  assert.equal(g.check("192.0.2.7", "a@example.org", "b@example.test").kind, "defer");
});

test("old entries are deleted from the database, not only ignored", () => {
  const g = greylist({ maxAgeSeconds: 10 * DAY });
  for (let i = 0; i < 50; i++) g.check("192.0.2.7", `s${i}@example.org`, "b@example.test");
  g.check("192.0.2.8", "kept@example.org", "b@example.test");
  advance(300);
  g.check("192.0.2.8", "kept@example.org", "b@example.test"); // passed: kept for max age
  const rows = () => {
    const db = new Database(path.join(dir, "greylist.db"), { readonly: true });
    try {
      return (db.prepare("SELECT count(*) AS n FROM triplets").get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  assert.equal(rows(), 51);
  advance(2 * DAY + 3600);
  g.check("198.51.100.1", "x@example.org", "b@example.test"); // sweeps (at most hourly) and adds one
  assert.equal(rows(), 2);
  advance(10 * DAY + 3600);
  g.check("198.51.100.2", "y@example.org", "b@example.test");
  assert.equal(rows(), 1);
});

test("auto-whitelist: after N passed retries a client network skips greylisting", () => {
  const g = greylist({ autoWhitelist: 2 });
  for (const sender of ["a@example.org", "b@example.org"]) {
    assert.equal(g.check("192.0.2.7", sender, "x@example.test").kind, "defer");
    advance(300);
    assert.deepEqual(g.check("192.0.2.7", sender, "x@example.test"), { kind: "pass", why: "retried" });
  }
  assert.deepEqual(g.check("192.0.2.9", "new@example.net", "y@example.test"), { kind: "pass", why: "client" });
  assert.equal(g.check("198.51.100.1", "new@example.net", "y@example.test").kind, "defer");
});

test("auto-whitelist off (0): no client ever skips", () => {
  const g = greylist({ autoWhitelist: 0 });
  for (let i = 0; i < 5; i++) {
    g.check("192.0.2.7", `s${i}@example.org`, "x@example.test");
    advance(300);
    g.check("192.0.2.7", `s${i}@example.org`, "x@example.test");
  }
  assert.equal(g.check("192.0.2.7", "new@example.net", "x@example.test").kind, "defer");
});

test("state survives a restart (the database is reopened)", () => {
  const first = greylist();
  first.check("192.0.2.7", "a@example.org", "b@example.test");
  first.close();
  open.length = 0;
  advance(300);
  assert.deepEqual(greylist().check("192.0.2.7", "a@example.org", "b@example.test"), { kind: "pass", why: "retried" });
  const mode = fs.statSync(path.join(dir, "greylist.db")).mode & 0o777;
  assert.equal(mode, 0o600);
});

test("client networks and sender normalisation", () => {
  assert.equal(clientNetwork("192.0.2.77"), "192.0.2.0/24");
  assert.equal(clientNetwork("2001:db8::1"), "2001:0db8:0000:0000::/64");
  assert.equal(normaliseSender("prvs=1234abcd=Bounce@Example.org"), "bounce@example.org");
  assert.equal(normaliseSender("user+tag@example.org"), "user@example.org");
  assert.equal(normaliseSender(""), "");
});
