// Unit tests for recipient resolution over a real AccountStore in a temp folder: depth limits (a
// deep branch refuses the whole tree, never drops it), loops, plus-addressing, postmaster, catch-all,
// and a 5,000-member list resolved quickly. Also the expanded-recipient cap (expanded-recipients.ts).
import { afterEach, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseAddress } from "../core/address.js";
import { AccountStore } from "../store/account-store.js";
import { ExpandedRecipients } from "./expanded-recipients.js";
import { MAX_DEPTH, resolveRecipient, type Resolution } from "./recipient-resolver.js";

let dir: string;
let store: AccountStore;
const PLUS = { delimiter: "+" };
const FORCE = { force: true };

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-resolver-"));
  store = new AccountStore(path.join(dir, "data"), ["localhost", "example.test"]);
});

afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function resolve(address: string, opts = PLUS): Resolution {
  return resolveRecipient(store, parseAddress(address)!, opts);
}

function route(address: string, opts = PLUS): { local: string[]; remote: string[] } {
  const r = resolve(address, opts);
  assert.equal(r.kind, "ok", `${address}: ${JSON.stringify(r)}`);
  return r.kind === "ok" ? { local: [...r.route.local].sort(), remote: [...r.route.remote].sort() } : { local: [], remote: [] };
}

/** a0 -> a1 -> ... -> a<n> -> leaf */
function chain(prefix: string, n: number, leaf: string): void {
  store.addAlias(`${prefix}${n}@localhost`, [leaf], FORCE);
  for (let i = n - 1; i >= 0; i--) store.addAlias(`${prefix}${i}@localhost`, [`${prefix}${i + 1}@localhost`]);
}

test("a chain within MAX_DEPTH delivers; one level deeper is refused as too deep, not as a loop", () => {
  store.addUser("alice@localhost", "pw");
  chain("ok", MAX_DEPTH - 1, "alice@localhost");
  assert.deepEqual(route("ok0@localhost").local, ["alice@localhost"]);
  chain("deep", MAX_DEPTH, "alice@localhost");
  assert.deepEqual(resolve("deep0@localhost"), { kind: "too-deep" });
});

test("a deep branch beside a shallow one refuses the whole tree instead of dropping the branch", () => {
  store.addUser("alice@localhost", "pw");
  store.addUser("bob@localhost", "pw");
  chain("deep", MAX_DEPTH, "bob@localhost");
  store.addListMembers("tree@localhost", ["alice@localhost", "deep0@localhost"]);
  // On main this returned ok with alice only: bob's copy was dropped while the message got 250.
  assert.deepEqual(resolve("tree@localhost"), { kind: "too-deep" });
});

test("a real loop is a loop; a cycle beside real recipients delivers to them; a diamond is not a loop", () => {
  store.addUser("alice@localhost", "pw");
  store.addAlias("a@localhost", ["b@localhost"], FORCE);
  store.addAlias("b@localhost", ["a@localhost"]);
  assert.deepEqual(resolve("a@localhost"), { kind: "loop" });
  store.addAlias("b@localhost", ["alice@localhost"]);
  assert.deepEqual(route("a@localhost").local, ["alice@localhost"]);
  store.addUser("bob@localhost", "pw");
  store.addAlias("left@localhost", ["bob@localhost"]);
  store.addAlias("right@localhost", ["bob@localhost", "far@remote.example"]);
  store.addListMembers("top@localhost", ["left@localhost", "right@localhost"]);
  assert.deepEqual(route("top@localhost"), { local: ["bob@localhost"], remote: ["far@remote.example"] });
});

test("plus-addressing: alice+tag@ reaches alice@; an exact alice+tag entry wins; \"\" turns it off", () => {
  store.addUser("alice@localhost", "pw");
  store.addUser("bob@localhost", "pw");
  assert.deepEqual(route("Alice+News@localhost").local, ["alice@localhost"]);
  assert.deepEqual(route("alice+@localhost").local, ["alice@localhost"]);
  assert.deepEqual(resolve("+alice@localhost"), { kind: "unknown" });
  store.addAlias("alice+special@localhost", ["bob@localhost"]);
  assert.deepEqual(route("alice+special@localhost").local, ["bob@localhost"]);
  assert.deepEqual(resolve("alice+news@localhost", { delimiter: "" }), { kind: "unknown" });
  assert.deepEqual(route("alice-news@localhost", { delimiter: "-" }).local, ["alice@localhost"]);
  // Lists and aliases reach plus-addressed targets too.
  store.addListMembers("l@localhost", ["bob+list@localhost"], { delimiter: "+" });
  assert.deepEqual(route("l@localhost").local, ["bob@localhost"]);
});

test("catch-all: any unknown local part of the domain; users, aliases, lists and postmaster win", () => {
  store.addUser("alice@example.test", "pw");
  store.addUser("bob@example.test", "pw");
  store.addAlias("@example.test", ["alice@example.test"]);
  assert.deepEqual(route("whoever@example.test").local, ["alice@example.test"]);
  assert.deepEqual(route("bob@example.test").local, ["bob@example.test"]);
  assert.deepEqual(route("bob+tag@example.test").local, ["bob@example.test"]);
  assert.deepEqual(route("postmaster@example.test").local, ["postmaster@example.test"]);
  // Other domains are not affected.
  assert.deepEqual(resolve("whoever@localhost"), { kind: "unknown" });
});

test("a 5,000-member list resolves in one pass, quickly, and the cap counts it once", () => {
  const members = Array.from({ length: 5000 }, (_, i) => `m${i}@remote.example`);
  store.addListMembers("big@localhost", members);
  store.addUser("alice@localhost", "pw");
  store.addListMembers("big@localhost", ["alice@localhost"]);
  const t0 = performance.now();
  const r = resolve("big@localhost");
  const ms = performance.now() - t0;
  assert.equal(r.kind, "ok");
  if (r.kind !== "ok") return;
  assert.equal(r.route.remote.length, 5000);
  assert.deepEqual(r.route.local, ["alice@localhost"]);
  assert.ok(ms < 1000, `resolving took ${ms} ms`);

  const cap = new ExpandedRecipients(5001);
  assert.deepEqual(cap.admit(r.route), { kind: "ok" });
  assert.deepEqual(cap.admit(r.route), { kind: "ok" }, "the same route again costs nothing");
  assert.equal(cap.count, 5001);
  assert.deepEqual(cap.admit({ local: ["bob@localhost"], remote: [] }), { kind: "over", alone: false, size: 1 });
  assert.deepEqual(cap.admit({ local: ["alice@localhost"], remote: [] }), { kind: "ok" }, "already counted");
  assert.deepEqual(new ExpandedRecipients(10).admit(r.route), { kind: "over", alone: true, size: 5001 });
});
