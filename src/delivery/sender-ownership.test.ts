// Unit tests of submission sender ownership (RFC 6409 §6.1) over a real AccountStore in a temp folder:
// own address in any case, plus-addressing, alias chains, and what nobody owns (lists, catch-alls,
// other users, remote domains, the built-in postmaster).
import { afterEach, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { AccountStore } from "../store/account-store.js";
import { SenderOwnership } from "./sender-ownership.js";

let dir: string;
let store: AccountStore;
let owner: SenderOwnership;
const ALICE = "alice@example.test";

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-sender-"));
  store = new AccountStore(path.join(dir, "data"), ["example.test", "other.test"]);
  owner = new SenderOwnership(store, { delimiter: "+" });
  store.addUser(ALICE, "pw-alice");
  store.addUser("bob@example.test", "pw-bob");
});

afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const may = (sender: string, user = ALICE) => owner.mayUseSender(user, sender);

test("a user's own address, in any ASCII case, and plus-addressed", () => {
  assert.equal(may(ALICE), true);
  assert.equal(may("Alice@EXAMPLE.Test"), true);
  assert.equal(may("alice+news@example.test"), true);
  assert.equal(may("alice@example.test", "Alice@Example.TEST"), true);
  assert.equal(new SenderOwnership(store, { delimiter: "" }).mayUseSender(ALICE, "alice+news@example.test"), false);
});

test("the null sender is allowed (auto-replies, vacation)", () => {
  assert.equal(may(""), true);
});

test("another user's address, unknown, remote or unparsable senders are not the user's", () => {
  assert.equal(may("bob@example.test"), false);
  assert.equal(may("bob+x@example.test"), false);
  assert.equal(may("nobody@example.test"), false);
  assert.equal(may("alice@remote.test"), false);
  assert.equal(may("alice"), false);
  assert.equal(may("<alice@example.test>"), false);
  // U+212A KELVIN SIGN is not folded to "k": not kate's address.
  store.addUser("kate@example.test", "pw");
  assert.equal(owner.mayUseSender("kate@example.test", "\u212Aate@example.test"), false);
});

test("an alias reaching the user directly, through other aliases, or through plus-addressing", () => {
  store.addAlias("info@example.test", [ALICE, "bob@example.test"]);
  store.addAlias("sales@example.test", ["info@example.test"]);
  store.addAlias("press@other.test", ["alice+press@example.test"], { delimiter: "+" });
  store.addAlias("fwd@example.test", ["someone@remote.test"]);
  assert.equal(may("info@example.test"), true);
  assert.equal(may("info@example.test", "bob@example.test"), true);
  assert.equal(may("Sales+x@example.test"), true);
  assert.equal(may("press@other.test"), true);
  assert.equal(may("press@other.test", "bob@example.test"), false);
  assert.equal(may("fwd@example.test"), false);
});

test("alias loops end", () => {
  store.addAlias("a@example.test", ["b@example.test"], { force: true });
  store.addAlias("b@example.test", ["a@example.test"]);
  assert.equal(may("a@example.test"), false);
  store.addAlias("b@example.test", [ALICE]);
  assert.equal(may("a@example.test"), true);
});

test("lists, aliases through lists, catch-alls and the built-in postmaster are nobody's", () => {
  store.addListMembers("team@example.test", [ALICE, "bob@example.test"]);
  store.addAlias("staff@example.test", ["team@example.test"]);
  store.addAlias("@other.test", [ALICE]);
  assert.equal(may("team@example.test"), false);
  assert.equal(may("staff@example.test"), false);
  assert.equal(may("anything@other.test"), false);
  assert.equal(may("postmaster@example.test"), false);
  store.addAlias("postmaster@example.test", [ALICE]);
  assert.equal(may("postmaster@example.test"), true);
});
