// Unit tests of startup recovery on a temporary data_dir, with the boot id passed in: in the same
// boot an un-acked message (spool journal, single copy under its committed ",C" name in tmp/) is
// undone; after a reboot (or with no boot id to compare) it is completed; the boot id is recorded.
import { afterEach, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { committedTmpName, ownTmpName, uniqueName } from "../mailbox/maildir.js";
import { CommitJournal } from "../spool/commit-journal.js";
import { bootKind, recordBootId } from "./boot-id.js";
import { recoverDataDir } from "./startup-recovery.js";

let dataDir: string;
beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-recovery-"));
});
afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const BOOT = "boot-a";

function maildir(user: string): { tmp: string; new: string } {
  const root = path.join(dataDir, "mailboxes", "localhost", user);
  for (const d of ["tmp", "new", "cur"]) fs.mkdirSync(path.join(root, d), { recursive: true });
  return { tmp: path.join(root, "tmp"), new: path.join(root, "new") };
}

/** A single copy cut between its durable commit and its ack: tmp/<final>,C. Returns the final name. */
function committedCopy(user: string, content = "Subject: c\n\nbody\n"): string {
  const finalName = `${uniqueName()},S=${content.length},W=${content.length + 3}`;
  fs.writeFileSync(path.join(maildir(user).tmp, committedTmpName(finalName)), content);
  return finalName;
}

/** A message of three files cut after its first rename, before its ack: the journal is still there. */
async function cutJournal(): Promise<{ from: string; to: string }[]> {
  const renames = ["a", "b", "c"].map((u) => {
    const dirs = maildir(u);
    const name = uniqueName();
    fs.writeFileSync(path.join(dirs.tmp, name), `copy for ${u}\n`);
    return { from: path.join(dirs.tmp, name), to: path.join(dirs.new, `${name},S=11,W=12`) };
  });
  await CommitJournal.write(dataDir, "J1", renames);
  fs.renameSync(renames[0]!.from, renames[0]!.to);
  return renames;
}

const list = (dir: string) => fs.readdirSync(dir).sort();

describe("committed names in tmp/", () => {
  test("a committed name parses back to its final name; a bare own name is uncommitted; others are foreign", () => {
    const name = uniqueName();
    assert.deepEqual(ownTmpName(committedTmpName(`${name},S=10,W=12`)), { pid: process.pid, committed: `${name},S=10,W=12` });
    assert.deepEqual(ownTmpName(name), { pid: process.pid, committed: null });
    assert.equal(ownTmpName(`${name},S=10,W=12`), null, "a final name is no tmp/ name of ours");
    assert.equal(ownTmpName(`${name},C`), null, "a marker without sizes is not ours");
    assert.equal(ownTmpName("1700000000.M1P1Q1.other-host,S=1,W=1,C"), null);
  });
});

describe("the boot id", () => {
  test("same when the recorded id matches; new when it differs, is missing or cannot be read", async () => {
    assert.equal(await bootKind(dataDir, BOOT), "new", "nothing recorded");
    await recordBootId(dataDir, BOOT);
    assert.equal(fs.readFileSync(path.join(dataDir, "boot_id"), "utf8"), `${BOOT}\n`);
    assert.equal(await bootKind(dataDir, BOOT), "same");
    assert.equal(await bootKind(dataDir, "boot-b"), "new");
    assert.equal(await bootKind(dataDir, null), "new", "no kernel boot id (not Linux)");
  });

  test("recovery records the current boot id (nothing else left beside it)", async () => {
    const r = await recoverDataDir(dataDir, { bootId: BOOT });
    assert.equal(r.boot, "new");
    assert.equal((await recoverDataDir(dataDir, { bootId: BOOT })).boot, "same");
    assert.deepEqual(list(dataDir), ["boot_id"]);
  });
});

describe("recovery in the same boot: an un-acked message got no 250 and is undone", () => {
  beforeEach(() => recordBootId(dataDir, BOOT));

  test("a single copy under its committed name in tmp/ is removed; new/ stays empty", async () => {
    committedCopy("a");
    const r = await recoverDataDir(dataDir, { bootId: BOOT });
    assert.equal(r.boot, "same");
    assert.deepEqual(r.committed, { completed: 0, removed: 1 });
    assert.deepEqual(r.maildirTmp, { files: 0, bytes: 0 });
    assert.deepEqual([...list(maildir("a").tmp), ...list(maildir("a").new)], []);
  });

  test("a journal is undone: the visible copy and the temporaries go", async () => {
    const renames = await cutJournal();
    const r = await recoverDataDir(dataDir, { bootId: BOOT });
    assert.deepEqual(r.journals, { undone: 1, completed: 0, files: 3 });
    for (const x of renames) assert.ok(!fs.existsSync(x.to) && !fs.existsSync(x.from));
    assert.deepEqual(list(path.join(dataDir, "spool", "journal")), []);
  });
});

describe("recovery after a reboot: an un-acked ack may have been lost after its 250, the message is completed", () => {
  beforeEach(() => recordBootId(dataDir, BOOT));

  test("a single copy under its committed name goes into new/ with its final name, exactly once", async () => {
    const finalName = committedCopy("a", "Subject: c\n\nkept\n");
    const r = await recoverDataDir(dataDir, { bootId: "boot-b" });
    assert.equal(r.boot, "new");
    assert.deepEqual(r.committed, { completed: 1, removed: 0 });
    assert.deepEqual(list(maildir("a").new), [finalName]);
    assert.equal(fs.readFileSync(path.join(maildir("a").new, finalName), "utf8"), "Subject: c\n\nkept\n");
    assert.deepEqual(list(maildir("a").tmp), []);
    // Run again (a crash during recovery): nothing more happens.
    assert.deepEqual((await recoverDataDir(dataDir, { bootId: "boot-c" })).committed, { completed: 0, removed: 0 });
    assert.deepEqual(list(maildir("a").new), [finalName]);
  });

  test("an uncommitted copy (bare name) is still removed: it never got a 250", async () => {
    fs.writeFileSync(path.join(maildir("a").tmp, uniqueName()), "half");
    const r = await recoverDataDir(dataDir, { bootId: "boot-b" });
    assert.deepEqual(r.maildirTmp, { files: 1, bytes: 4 });
    assert.deepEqual([...list(maildir("a").tmp), ...list(maildir("a").new)], []);
  });

  test("a journal is completed: the renames not done yet are done, the one done is kept", async () => {
    const renames = await cutJournal();
    const r = await recoverDataDir(dataDir, { bootId: "boot-b" });
    assert.deepEqual(r.journals, { undone: 0, completed: 1, files: 2 });
    for (const x of renames) assert.ok(fs.existsSync(x.to) && !fs.existsSync(x.from), x.to);
    assert.deepEqual(list(path.join(dataDir, "spool", "journal")), []);
  });

  test("a journal cut short (not JSON) is removed: no rename had started", async () => {
    fs.mkdirSync(path.join(dataDir, "spool", "journal"), { recursive: true });
    fs.writeFileSync(path.join(dataDir, "spool", "journal", "J3.json"), '{"version":1,"id":"J3","ren');
    assert.deepEqual((await recoverDataDir(dataDir, { bootId: "boot-b" })).journals, { undone: 1, completed: 0, files: 0 });
    assert.deepEqual(list(path.join(dataDir, "spool", "journal")), []);
  });

  test("without a kernel boot id every start is a new boot: completes, never loses", async () => {
    const finalName = committedCopy("a");
    const r = await recoverDataDir(dataDir, { bootId: null });
    assert.equal(r.boot, "new");
    assert.deepEqual(list(maildir("a").new), [finalName]);
  });
});

describe("Maildir++ folders (.Junk) and staged content", () => {
  test("a copy committed into .Junk/tmp/ is completed after a reboot and undone in the same boot; staged content goes", async () => {
    await recordBootId(dataDir, BOOT);
    const junk = path.join(dataDir, "mailboxes", "localhost", "a", ".Junk");
    for (const d of ["tmp", "new", "cur"]) fs.mkdirSync(path.join(junk, d), { recursive: true });
    const content = "Subject: spam\n\nbuy\n";
    const finalName = `${uniqueName()},S=${content.length},W=${content.length + 3}`;
    fs.writeFileSync(path.join(junk, "tmp", committedTmpName(finalName)), content);
    fs.writeFileSync(path.join(junk, "tmp", uniqueName()), "half");
    const staging = path.join(dataDir, "spool", "staging");
    fs.mkdirSync(staging, { recursive: true });
    fs.writeFileSync(path.join(staging, uniqueName()), "staged");
    const r = await recoverDataDir(dataDir, { bootId: "boot-b" });
    assert.deepEqual(r.committed, { completed: 1, removed: 0 });
    assert.deepEqual(r.maildirTmp, { files: 2, bytes: 4 + 6 });
    assert.deepEqual(list(path.join(junk, "new")), [finalName]);
    assert.deepEqual(list(path.join(junk, "tmp")), []);
    assert.deepEqual(list(staging), []);

    fs.writeFileSync(path.join(junk, "tmp", committedTmpName(`${uniqueName()},S=1,W=2`)), "x");
    const again = await recoverDataDir(dataDir, { bootId: "boot-b" });
    assert.deepEqual(again.committed, { completed: 0, removed: 1 });
    assert.deepEqual(list(path.join(junk, "new")), [finalName]);
  });
});
