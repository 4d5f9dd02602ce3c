// Unit tests for AccountStore: users, aliases and lists over a real SQLite file in a temp folder.
// Covers validation (domains, unsafe local parts, duplicates across kinds), case-insensitivity,
// passwords and APOP secrets, search, and that a failed change leaves nothing half-written.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { UsageError } from "../core/errors.js";
import { AccountStore, type Entry } from "./account-store.js";

let dir: string;
let store: AccountStore;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-store-"));
  store = new AccountStore(path.join(dir, "data"), ["localhost", "Example.TEST"]);
});

afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Targets that name no local entry yet are refused without it. */
const FORCE = { force: true };

function usageError(message: string | RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof UsageError, `expected UsageError, got ${String(err)}`);
    if (typeof message === "string") assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  };
}

test("adds, lists, renames and deletes users", () => {
  const u = store.addUser("alice@localhost", "pw1", { name: "Alice Smith" });
  assert.deepEqual(u, { address: "alice@localhost", name: "Alice Smith", hasApop: false });
  store.addUser("bob@example.test", "pw2", { apop: true });
  assert.deepEqual(store.listUsers(), [
    { address: "bob@example.test", name: null, hasApop: true },
    { address: "alice@localhost", name: "Alice Smith", hasApop: false },
  ]);
  store.setName("alice@localhost", "Alice Jones");
  assert.equal(store.getUser("alice@localhost")?.name, "Alice Jones");
  store.setName("alice@localhost", null);
  assert.equal(store.getUser("alice@localhost")?.name, null);
  store.deleteUser("alice@localhost");
  assert.equal(store.getUser("alice@localhost"), null);
  assert.deepEqual(store.listUsers().map((x) => x.address), ["bob@example.test"]);
});

test("an empty display name is stored as none; control characters are refused", () => {
  store.addUser("alice@localhost", "pw", { name: "" });
  assert.equal(store.getUser("alice@localhost")?.name, null);
  store.setName("alice@localhost", "Al");
  store.setName("alice@localhost", "");
  assert.equal(store.getUser("alice@localhost")?.name, null);
  assert.throws(() => store.setName("alice@localhost", "Evil\nName"), usageError("Display name cannot contain control characters"));
  assert.throws(() => store.addUser("bob@localhost", "pw", { name: "a\tb" }), UsageError);
  assert.equal(store.getUser("bob@localhost"), null);
});

test("changes to missing users are refused", () => {
  assert.throws(() => store.deleteUser("nobody@localhost"), usageError("No such user nobody@localhost"));
  assert.throws(() => store.setPassword("nobody@localhost", "pw"), usageError("No such user nobody@localhost"));
  assert.throws(() => store.setName("nobody@localhost", "X"), usageError("No such user nobody@localhost"));
});

test("addresses are case-insensitive and stored lowercase", async () => {
  const u = store.addUser("Alice@LOCALHOST", "pw");
  assert.equal(u.address, "alice@localhost");
  assert.equal(store.getUser("alice@localhost")?.address, "alice@localhost");
  assert.equal(store.lookup("ALICE@localhost")?.kind, "user");
  assert.throws(() => store.addUser("alice@localhost", "pw"), usageError("alice@localhost already exists as a user"));
  assert.equal(await store.checkPassword("ALICE@Localhost", "pw"), true);
  store.addUser("bob@example.test", "pw"); // domain configured as "Example.TEST"
  store.deleteUser("BOB@EXAMPLE.TEST");
  assert.equal(store.getUser("bob@example.test"), null);
});

test("non-local domains are refused for users, aliases and lists", () => {
  const msg = "Domain other.org is not local (local domains: localhost, example.test)";
  assert.throws(() => store.addUser("x@other.org", "pw"), usageError(msg));
  assert.throws(() => store.addAlias("x@other.org", ["alice@localhost"]), usageError(msg));
  assert.throws(() => store.addListMembers("x@other.org", ["alice@localhost"]), usageError(msg));
  assert.throws(() => store.listMembers("x@other.org"), usageError(msg));
  assert.deepEqual(store.listUsers(), []);
});

test("malformed and unsafe mailbox names are refused", () => {
  for (const bad of ["../x@localhost", ".hidden@localhost", "a..b@localhost", "x.@localhost", "nodomain", "@localhost", "a@"])
    assert.throws(() => store.addUser(bad, "pw"), usageError(`Cannot parse address ${JSON.stringify(bad)}`), bad);
  for (const bad of ['"../x"@localhost', '".hidden"@localhost', '"a/b"@localhost', '"a b"@localhost'])
    assert.throws(() => store.addUser(bad, "pw"), usageError(/^Cannot use .* as a mailbox/), bad);
  assert.deepEqual(store.listUsers(), []);
  // Safe punctuation is fine.
  store.addUser("first.last+tag_x-y=z@localhost", "pw");
  assert.ok(store.getUser("first.last+tag_x-y=z@localhost"));
});

test("passwords: empty and multi-line are refused", () => {
  assert.throws(() => store.addUser("alice@localhost", ""), usageError("Password is empty"));
  assert.throws(() => store.addUser("alice@localhost", "a\nb"), usageError("Password cannot contain control characters (line breaks, tabs, NUL, escapes)"));
  assert.equal(store.getUser("alice@localhost"), null);
  store.addUser("alice@localhost", "pw");
  assert.throws(() => store.setPassword("alice@localhost", ""), usageError("Password is empty"));
});

test("checkPassword: right, wrong, unknown user, and after a change", async () => {
  store.addUser("alice@localhost", "correct horse");
  assert.equal(await store.checkPassword("alice@localhost", "correct horse"), true);
  assert.equal(await store.checkPassword("alice@localhost", "Correct horse"), false);
  assert.equal(await store.checkPassword("alice@localhost", ""), false);
  assert.equal(await store.checkPassword("nobody@localhost", "correct horse"), false);
  store.setPassword("alice@localhost", "battery staple");
  assert.equal(await store.checkPassword("alice@localhost", "correct horse"), false);
  assert.equal(await store.checkPassword("alice@localhost", "battery staple"), true);
});

test("apopSecret only for users with APOP; a password change without --apop turns it off", () => {
  store.addUser("alice@localhost", "plain");
  store.addUser("bob@localhost", "apop-secret", { apop: true });
  assert.equal(store.apopSecret("alice@localhost"), null);
  assert.equal(store.apopSecret("BOB@localhost"), "apop-secret");
  assert.equal(store.apopSecret("nobody@localhost"), null);
  store.setPassword("alice@localhost", "now-apop", { apop: true });
  assert.equal(store.apopSecret("alice@localhost"), "now-apop");
  assert.equal(store.getUser("alice@localhost")?.hasApop, true);
  store.setPassword("bob@localhost", "no-apop");
  assert.equal(store.apopSecret("bob@localhost"), null);
  assert.equal(store.getUser("bob@localhost")?.hasApop, false);
});

test("aliases: add, extend, list, lookup, delete", () => {
  store.addAlias("Postmaster@localhost", ["alice@localhost", "Bob@Remote.example"], FORCE);
  store.addAlias("postmaster@localhost", ["carol@localhost"], FORCE);
  store.addAlias("abuse@example.test", ["postmaster@localhost"], FORCE);
  assert.deepEqual(store.listAliases(), [
    { alias: "abuse@example.test", targets: ["postmaster@localhost"] },
    { alias: "postmaster@localhost", targets: ["alice@localhost", "bob@remote.example", "carol@localhost"] },
  ]);
  assert.deepEqual(store.lookup("postmaster@localhost"), {
    kind: "alias",
    address: "postmaster@localhost",
    targets: ["alice@localhost", "bob@remote.example", "carol@localhost"],
  });
  store.deleteAlias("POSTMASTER@localhost");
  assert.equal(store.lookup("postmaster@localhost"), null);
  assert.throws(() => store.deleteAlias("postmaster@localhost"), usageError("No such alias postmaster@localhost"));
});

test("aliases: bad targets are refused", () => {
  assert.throws(() => store.addAlias("a@localhost", []), usageError("Give at least one target address"));
  assert.throws(() => store.addAlias("a@localhost", ["a@localhost"]), usageError("a@localhost cannot point to itself"));
  assert.throws(() => store.addAlias("a@localhost", ["b@localhost", "B@localhost"]), usageError("b@localhost is given twice"));
  assert.throws(() => store.addAlias("a@localhost", ["not an address"]), usageError('Cannot parse address "not an address"'));
  assert.deepEqual(store.listAliases(), []);
});

test("duplicates are refused across users, aliases and lists", () => {
  store.addUser("alice@localhost", "pw");
  store.addAlias("postmaster@localhost", ["alice@localhost"]);
  store.addListMembers("staff@localhost", ["alice@localhost"]);
  assert.throws(() => store.addAlias("Alice@localhost", ["bob@localhost"]), usageError("alice@localhost already exists as a user"));
  assert.throws(() => store.addListMembers("alice@localhost", ["bob@localhost"]), usageError("alice@localhost already exists as a user"));
  assert.throws(() => store.addUser("postmaster@localhost", "pw"), usageError("postmaster@localhost already exists as an alias"));
  assert.throws(() => store.addListMembers("postmaster@localhost", ["bob@localhost"]), usageError("postmaster@localhost already exists as an alias"));
  assert.throws(() => store.addUser("staff@localhost", "pw"), usageError("staff@localhost already exists as a list"));
  assert.throws(() => store.addAlias("staff@localhost", ["bob@localhost"]), usageError("staff@localhost already exists as a list"));
  assert.throws(() => store.addAlias("postmaster@localhost", ["ALICE@localhost"]), usageError("Alias postmaster@localhost already points to alice@localhost"));
  assert.throws(() => store.addListMembers("staff@localhost", ["alice@LOCALHOST"]), usageError("alice@localhost is already a member of staff@localhost"));
  assert.deepEqual(store.listAliases(), [{ alias: "postmaster@localhost", targets: ["alice@localhost"] }]);
  assert.deepEqual(store.listLists(), [{ list: "staff@localhost", members: ["alice@localhost"] }]);
});

test("lists: add, show, delete one member, delete the whole list", () => {
  store.addListMembers("staff@localhost", ["alice@localhost", "bob@example.test"], FORCE);
  store.addListMembers("Staff@localhost", ["carol@remote.example"], FORCE);
  assert.deepEqual(store.listMembers("STAFF@localhost"), ["alice@localhost", "bob@example.test", "carol@remote.example"]);
  assert.equal(store.lookup("staff@localhost")?.kind, "list");

  store.deleteList("staff@localhost", ["Bob@example.test"]);
  assert.deepEqual(store.listMembers("staff@localhost"), ["alice@localhost", "carol@remote.example"]);
  assert.throws(() => store.deleteList("staff@localhost", ["bob@example.test"]), usageError("bob@example.test is not a member of staff@localhost"));

  store.deleteList("staff@localhost");
  assert.equal(store.lookup("staff@localhost"), null);
  assert.deepEqual(store.listLists(), []);
  assert.throws(() => store.listMembers("staff@localhost"), usageError("No such list staff@localhost"));
  assert.throws(() => store.deleteList("staff@localhost"), usageError("No such list staff@localhost"));
});

test("lists: removing the last member removes the list; a user is not a list", () => {
  store.addListMembers("team@localhost", ["alice@localhost"], FORCE);
  store.deleteList("team@localhost", ["alice@localhost"]);
  assert.equal(store.lookup("team@localhost"), null);
  store.addUser("alice@localhost", "pw");
  assert.throws(() => store.listMembers("alice@localhost"), usageError("No such list alice@localhost"));
  assert.throws(() => store.deleteList("alice@localhost"), usageError("No such list alice@localhost"));
  assert.ok(store.getUser("alice@localhost"));
});

test("nothing is half-written when one of several targets or members is bad", () => {
  // A malformed target: refused before anything is written.
  assert.throws(() => store.addAlias("a@localhost", ["b@localhost", "bad address", "c@localhost"], FORCE), UsageError);
  assert.equal(store.lookup("a@localhost"), null);
  assert.throws(() => store.addListMembers("l@localhost", ["b@localhost", "@@"], FORCE), UsageError);
  assert.equal(store.lookup("l@localhost"), null);

  // A duplicate found part-way through the transaction: the earlier inserts are rolled back.
  store.addAlias("a@localhost", ["x@localhost"], FORCE);
  assert.throws(() => store.addAlias("a@localhost", ["y@localhost", "x@localhost"], FORCE), UsageError);
  assert.deepEqual(store.listAliases(), [{ alias: "a@localhost", targets: ["x@localhost"] }]);

  store.addListMembers("l@localhost", ["m1@localhost", "m2@localhost"], FORCE);
  assert.throws(() => store.addListMembers("l@localhost", ["m3@localhost", "m2@localhost"], FORCE), UsageError);
  assert.deepEqual(store.listMembers("l@localhost"), ["m1@localhost", "m2@localhost"]);

  // Deleting members where one is missing deletes none.
  assert.throws(() => store.deleteList("l@localhost", ["m1@localhost", "nobody@localhost"]), UsageError);
  assert.deepEqual(store.listMembers("l@localhost"), ["m1@localhost", "m2@localhost"]);
});

test("search: exact and partial by local part and by display name", () => {
  store.addUser("alice@localhost", "pw", { name: "Alice Smith" });
  store.addUser("alicia@example.test", "pw");
  store.addUser("bob@localhost", "pw", { name: "Robert Smithers" });
  store.addAlias("postmaster@localhost", ["alice@localhost"]);
  store.addListMembers("staff@localhost", ["bob@localhost"]);
  const addrs = (r: { exact: Entry[]; partial: Entry[] }, which: "exact" | "partial") =>
    r[which].map((e) => (e.kind === "user" ? e.user.address : e.address));

  const alice = store.search("Alice");
  assert.deepEqual(addrs(alice, "exact"), ["alice@localhost"]);
  assert.deepEqual(addrs(alice, "partial"), ["alice@localhost"]);

  const ali = store.search("ali");
  assert.deepEqual(addrs(ali, "exact"), []);
  assert.deepEqual(addrs(ali, "partial").sort(), ["alice@localhost", "alicia@example.test"]);

  const smith = store.search("smith");
  assert.deepEqual(addrs(smith, "exact"), []);
  assert.deepEqual(addrs(smith, "partial").sort(), ["alice@localhost", "bob@localhost"]);

  assert.deepEqual(addrs(store.search("postmaster"), "exact"), ["postmaster@localhost"]);
  assert.equal(store.search("postmaster").exact[0]?.kind, "alias");
  assert.equal(store.search("staff").exact[0]?.kind, "list");
  assert.deepEqual(store.search("zzz"), { exact: [], partial: [] });
});

test("data survives closing and reopening the store", async () => {
  store.addUser("alice@localhost", "pw", { name: "Alice" });
  store.addAlias("postmaster@localhost", ["alice@localhost"]);
  store.close();
  store = new AccountStore(path.join(dir, "data"), ["localhost"]);
  assert.equal(store.getUser("alice@localhost")?.name, "Alice");
  assert.equal(await store.checkPassword("alice@localhost", "pw"), true);
  assert.deepEqual(store.listAliases(), [{ alias: "postmaster@localhost", targets: ["alice@localhost"] }]);
});

test("passwords with control characters are refused (tab, escape, DEL)", () => {
  for (const pw of ["a\tb", "a\x1bb", "a\x7f", "a\rb", "a\0b"])
    assert.throws(() => store.addUser("alice@localhost", pw), usageError("Password cannot contain control characters (line breaks, tabs, NUL, escapes)"), JSON.stringify(pw));
  assert.equal(store.getUser("alice@localhost"), null);
  store.addUser("alice@localhost", "spaces are fine ünd ümlauts");
  assert.equal(store.checkPassword("alice@localhost", "spaces are fine ünd ümlauts"), true);
});

test("aliases and lists may not point at local addresses that name nothing, unless forced", () => {
  store.addUser("alice@localhost", "pw");
  const msg = "bob@localhost is not a local user, alias or list; add it first, or pass --force";
  assert.throws(() => store.addAlias("a@localhost", ["alice@localhost", "bob@localhost"]), usageError(msg));
  assert.throws(() => store.addListMembers("l@localhost", ["bob@localhost"]), usageError(msg));
  assert.deepEqual(store.listAliases(), []);
  assert.deepEqual(store.listLists(), []);
  // Remote targets, postmaster@ (always accepted) and existing entries are fine.
  store.addAlias("a@localhost", ["alice@localhost", "far@remote.example", "postmaster@example.test"]);
  store.addListMembers("l@localhost", ["a@localhost"]);
  // alice+tag@ names alice@ when the delimiter is "+", not without it.
  assert.throws(() => store.addListMembers("l@localhost", ["alice+news@localhost"]), usageError(/^alice\+news@localhost is not a local/));
  store.addListMembers("l@localhost", ["alice+news@localhost"], { delimiter: "+" });
  // A domain with a catch-all takes any local part.
  store.addAlias("@example.test", ["alice@localhost"]);
  store.addListMembers("l@localhost", ["anyone@example.test"]);
  store.addAlias("b@localhost", ["ghost@localhost"], FORCE);
  assert.deepEqual(store.lookup("b@localhost"), { kind: "alias", address: "b@localhost", targets: ["ghost@localhost"] });
});

test("a catch-all alias is @domain of a local domain", () => {
  store.addUser("alice@localhost", "pw");
  store.addAlias("@LOCALHOST", ["alice@localhost"]);
  assert.deepEqual(store.lookup("@localhost"), { kind: "alias", address: "@localhost", targets: ["alice@localhost"] });
  assert.deepEqual(store.listAliases(), [{ alias: "@localhost", targets: ["alice@localhost"] }]);
  assert.throws(() => store.addAlias("@other.org", ["alice@localhost"]), usageError("Domain other.org is not local (local domains: localhost, example.test)"));
  assert.throws(() => store.addAlias("@bad domain", ["alice@localhost"]), usageError('Cannot parse catch-all "@bad domain": expected @domain'));
  store.deleteAlias("@localhost");
  assert.equal(store.lookup("@localhost"), null);
});

test("deleting a user takes them out of lists and aliases, and says where from", () => {
  store.addUser("alice@localhost", "pw");
  store.addUser("bob@localhost", "pw");
  store.addListMembers("team@localhost", ["alice@localhost", "bob@localhost"]);
  store.addListMembers("solo@localhost", ["alice@localhost"]);
  store.addAlias("fwd@localhost", ["alice@localhost"]);
  store.addAlias("both@localhost", ["alice@localhost", "bob@localhost"]);
  assert.deepEqual(store.deleteUser("Alice@localhost"), { lists: ["solo@localhost", "team@localhost"], aliases: ["both@localhost", "fwd@localhost"] });
  assert.deepEqual(store.listLists(), [{ list: "team@localhost", members: ["bob@localhost"] }]);
  assert.deepEqual(store.listAliases(), [{ alias: "both@localhost", targets: ["bob@localhost"] }]);
  assert.deepEqual(store.deleteUser("bob@localhost"), { lists: ["team@localhost"], aliases: ["both@localhost"] });
});

test("targetsOf classifies every member in one query", () => {
  store.addUser("alice@localhost", "pw");
  store.addAlias("fwd@localhost", ["alice@localhost"]);
  store.addListMembers("inner@localhost", ["alice@localhost"]);
  store.addListMembers("l@localhost", ["alice@localhost", "fwd@localhost", "inner@localhost", "far@remote.example", "ghost@localhost"], FORCE);
  assert.deepEqual(store.targetsOf("list", "L@localhost"), [
    { address: "alice@localhost", kind: "user" },
    { address: "fwd@localhost", kind: "alias" },
    { address: "inner@localhost", kind: "list" },
    { address: "far@remote.example", kind: null },
    { address: "ghost@localhost", kind: null },
  ]);
  assert.deepEqual(store.targetsOf("alias", "fwd@localhost"), [{ address: "alice@localhost", kind: "user" }]);
});

test("Unicode case mapping never reaches an ASCII account (U+212A KELVIN SIGN)", () => {
  store.addUser("kate@localhost", "pw");
  assert.equal(store.lookup("\u212Aate@localhost"), null);
  assert.equal(store.passwordHash("\u212Aate@localhost"), null);
  assert.equal(store.checkPassword("\u212Aate@localhost", "pw"), false);
  assert.equal(store.lookup("KATE@localhost")?.kind, "user");
  assert.throws(() => store.addUser("\u212Aate@localhost", "pw"), usageError(/^Cannot use .* as a mailbox/));
});

test("data_dir is created 0700 and the database 0600; wider modes are narrowed and reported", () => {
  const data = path.join(dir, "data");
  assert.equal(fs.statSync(data).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(data, "petrel.db")).mode & 0o777, 0o600);
  for (const f of ["petrel.db-wal", "petrel.db-shm"]) if (fs.existsSync(path.join(data, f))) assert.equal(fs.statSync(path.join(data, f)).mode & 0o777, 0o600, f);
  store.close();
  fs.chmodSync(data, 0o755);
  fs.chmodSync(path.join(data, "petrel.db"), 0o644);
  store = new AccountStore(data, ["localhost"]);
  assert.equal(fs.statSync(data).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(data, "petrel.db")).mode & 0o777, 0o600);
  assert.equal(store.narrowed.length, 2);
  assert.match(store.narrowed[0]!, /data was readable by others \(mode 755\); changed to 700$/);
});

test("an unusable data_dir is one UsageError", () => {
  const file = path.join(dir, "a-file");
  fs.writeFileSync(file, "");
  assert.throws(() => new AccountStore(file, ["localhost"]), usageError(`Cannot use data_dir ${file}: not a folder`));
  assert.throws(() => new AccountStore(path.join(file, "sub"), ["localhost"]), usageError(new RegExp(`^Cannot use data_dir ${file}/sub: ENOTDIR`)));
});
