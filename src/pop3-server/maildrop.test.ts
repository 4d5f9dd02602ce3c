// Unit tests of Maildrop on temporary Maildirs: snapshot numbering in delivery order, sizes from
// ",W=" names and by scanning, UIDL ids, deletion only at update(), RSET, and files other tools move.
// Covers RFC 1939 §5 (numbering), §6 (UPDATE) and §7 (UIDL).
import { afterEach, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Maildrop, compareNames } from "./maildrop.js";

let root: string;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-maildrop-"));
  for (const d of ["tmp", "new", "cur"]) fs.mkdirSync(path.join(root, d));
});

afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

/** Writes a message the way delivery names it: ",S=<file size>,W=<CRLF size>". */
function deliver(folder: "new" | "cur", unique: string, content: string, suffix = ""): string {
  const crlf = content.replace(/(?<!\r)\n/g, "\r\n");
  const name = `${unique},S=${Buffer.byteLength(content)},W=${Buffer.byteLength(crlf)}${suffix}`;
  fs.writeFileSync(path.join(root, folder, name), content);
  return name;
}

function plain(folder: "tmp" | "new" | "cur", name: string, content: string): void {
  fs.writeFileSync(path.join(root, folder, name), content);
}

describe("Maildrop snapshot", () => {
  test("numbers messages of new/ and cur/ by delivery time, digit runs compared as numbers", async () => {
    deliver("new", "1700000002.M5000P1Q1.host", "c\r\n");
    deliver("cur", "1700000001.M900P1Q1.host", "b\r\n", ":2,S");
    deliver("new", "1700000002.M12000P1Q2.host", "d\r\n");
    deliver("new", "999999999.M1P1Q1.host", "a\r\n"); // fewer digits, earlier second
    const md = await Maildrop.open(root);
    assert.deepEqual(
      md.messages.map((m) => [m.number, m.uid]),
      [
        [1, "999999999.M1P1Q1.host"],
        [2, "1700000001.M900P1Q1.host"],
        [3, "1700000002.M5000P1Q1.host"],
        [4, "1700000002.M12000P1Q2.host"],
      ],
    );
  });

  test("compareNames orders by seconds, then digit runs, then the name", () => {
    const names = ["10.M2P1.h", "9.M30P1.h", "10.M10P1.h", "x.no-time", "10.M10P1.h:2,S"];
    assert.deepEqual([...names].sort(compareNames), ["9.M30P1.h", "10.M2P1.h", "10.M10P1.h", "10.M10P1.h:2,S", "x.no-time"]);
  });

  test("sizes come from ,W= when present and are scanned otherwise", async () => {
    deliver("new", "1700000001.M1P1Q1.host", "Subject: x\r\n\r\nbody\r\n");
    plain("new", "1700000002.M1P1Q1.host", "Subject: y\n\nbare LF body\n"); // a foreign tool, no ,W=
    plain("cur", "1700000003.M1P1Q1.host,S=999:2,", "a\r\nb\nc"); // ,S= is the file size, not the CRLF size
    const md = await Maildrop.open(root);
    assert.deepEqual(
      md.messages.map((m) => m.size),
      [Buffer.byteLength("Subject: x\r\n\r\nbody\r\n"), Buffer.byteLength("Subject: y\r\n\r\nbare LF body\r\n"), Buffer.byteLength("a\r\nb\r\nc")],
    );
    assert.deepEqual(md.stat(), { count: 3, size: 20 + 28 + 7 });
  });

  test("a file without ,W= is read once, not at every login (cached by inode, size and mtime)", async () => {
    const file = path.join(root, "new", "1700000009.M1P1Q1.other");
    fs.writeFileSync(file, "a\nb\nc\n"); // CRLF size 9
    const atime = new Date(1_700_000_000_000), mtime = new Date(1_700_000_000_000);
    fs.utimesSync(file, atime, mtime); // a whole second: utimes can restore it exactly
    assert.equal((await Maildrop.open(root)).messages[0]!.size, 9);
    // Same size and mtime, other bytes: a second login must not read it again.
    fs.writeFileSync(file, "abcd\r\n");
    fs.utimesSync(file, atime, mtime);
    assert.equal((await Maildrop.open(root)).messages[0]!.size, 9, "the cached size, not a new scan");
    // A changed mtime is a changed file: scanned again.
    fs.utimesSync(file, atime, new Date(mtime.getTime() + 5000));
    assert.equal((await Maildrop.open(root)).messages[0]!.size, 6);
  });

  test("the ,W= value is trusted without reading the file", async () => {
    plain("new", "1700000001.M1P1Q1.host,S=3,W=12345", "abc");
    const md = await Maildrop.open(root);
    assert.equal(md.messages[0]!.size, 12345);
  });

  test("dot files and folders are skipped; a missing Maildir is an empty maildrop", async () => {
    plain("new", ".hidden", "x");
    fs.mkdirSync(path.join(root, "new", "1700000000.folder"));
    plain("tmp", "1700000000.M1P1Q1.host", "being written");
    deliver("new", "1700000001.M1P1Q1.host", "x\r\n");
    assert.equal((await Maildrop.open(root)).count, 1);
    assert.deepEqual((await Maildrop.open(path.join(root, "nobody"))).stat(), { count: 0, size: 0 });
  });

  test("UIDL ids are the Maildir unique id, or a hex hash when it does not fit RFC 1939", async () => {
    deliver("new", "1700000001.M1P1Q1.host", "x\r\n");
    plain("new", "1700000002.M1P1Q1.h\u00e9st", "x\r\n");
    plain("new", `1700000003.${"x".repeat(80)}`, "x\r\n");
    const ids = (await Maildrop.open(root)).messages.map((m) => m.uid);
    assert.equal(ids[0], "1700000001.M1P1Q1.host");
    assert.match(ids[1]!, /^[0-9a-f]{40}$/);
    assert.match(ids[2]!, /^[0-9a-f]{40}$/);
    assert.notEqual(ids[1], ids[2]);
    assert.deepEqual((await Maildrop.open(root)).messages.map((m) => m.uid), ids, "the same ids the next time");
  });

  test("messages delivered after the snapshot are not part of it", async () => {
    deliver("new", "1700000001.M1P1Q1.host", "x\r\n");
    const md = await Maildrop.open(root);
    deliver("new", "1700000002.M1P1Q1.host", "y\r\n");
    assert.equal(md.count, 1);
    assert.equal(md.get(2).kind, "no-such");
    assert.equal((await Maildrop.open(root)).count, 2);
  });

  test("get() explains numbers out of range and deleted messages", async () => {
    deliver("new", "1700000001.M1P1Q1.host", "x\r\n");
    deliver("new", "1700000002.M1P1Q1.host", "y\r\n");
    const md = await Maildrop.open(root);
    assert.deepEqual(md.get(0), { kind: "no-such", text: "no such message, only 2 messages in maildrop" });
    assert.deepEqual(md.get(3), { kind: "no-such", text: "no such message, only 2 messages in maildrop" });
    const first = md.get(1);
    assert.equal(first.kind, "ok");
    if (first.kind === "ok") md.markDeleted(first.message);
    assert.deepEqual(md.get(1), { kind: "deleted", text: "message 1 already deleted" });
    assert.deepEqual((await Maildrop.open(path.join(root, "none"))).get(1), { kind: "no-such", text: "no such message, maildrop is empty" });
  });
});

describe("Maildrop deletion", () => {
  test("marks change STAT and LIST at once but the files only at update()", async () => {
    const a = deliver("new", "1700000001.M1P1Q1.host", "aaa\r\n");
    const b = deliver("cur", "1700000002.M1P1Q1.host", "bbbbbb\r\n", ":2,S");
    const c = deliver("new", "1700000003.M1P1Q1.host", "c\r\n");
    const md = await Maildrop.open(root);
    for (const n of [1, 2]) {
      const found = md.get(n);
      assert.equal(found.kind, "ok");
      if (found.kind === "ok") md.markDeleted(found.message);
    }
    assert.deepEqual(md.stat(), { count: 1, size: 3 });
    assert.deepEqual(md.messages.map((m) => m.number), [3], "numbers do not shift");
    assert.ok(fs.existsSync(path.join(root, "new", a)) && fs.existsSync(path.join(root, "cur", b)), "nothing removed before update");
    assert.deepEqual(await md.update(), { deleted: 2, failed: 0, left: 1 });
    assert.deepEqual(fs.readdirSync(path.join(root, "new")), [c]);
    assert.deepEqual(fs.readdirSync(path.join(root, "cur")), []);
  });

  test("reset() unmarks everything; update() then removes nothing", async () => {
    deliver("new", "1700000001.M1P1Q1.host", "a\r\n");
    const md = await Maildrop.open(root);
    const found = md.get(1);
    if (found.kind === "ok") md.markDeleted(found.message);
    assert.equal(md.stat().count, 0);
    md.reset();
    assert.deepEqual(md.stat(), { count: 1, size: 3 });
    assert.deepEqual(await md.update(), { deleted: 0, failed: 0, left: 1 });
    assert.equal(fs.readdirSync(path.join(root, "new")).length, 1);
  });

  test("a message another tool moved to cur/ is still read and deleted; one removed by it counts as gone", async () => {
    const a = deliver("new", "1700000001.M1P1Q1.host", "moved\r\n");
    const b = deliver("new", "1700000002.M1P1Q1.host", "removed\r\n");
    const md = await Maildrop.open(root);
    fs.renameSync(path.join(root, "new", a), path.join(root, "cur", `${a}:2,S`));
    fs.unlinkSync(path.join(root, "new", b));
    const [first, second] = md.messages;
    const fh = await md.openMessage(first!);
    assert.ok(fh);
    assert.equal((await fh.readFile()).toString(), "moved\r\n");
    await fh.close();
    assert.equal(await md.openMessage(second!), null);
    md.markDeleted(first!);
    md.markDeleted(second!);
    assert.deepEqual(await md.update(), { deleted: 2, failed: 0, left: 0 });
    assert.deepEqual(fs.readdirSync(path.join(root, "cur")), []);
  });
});
