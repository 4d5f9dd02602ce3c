// Unit tests of the spool on a temporary data_dir: copies in Maildirs with LF line ends and their
// ,S=/,W= sizes, the single copy's commit (one fsync of tmp/ under its committed name, none of new/),
// copies past the direct ones made at commit, the queue entry, abort, undoing a failed commit and a
// journal left by a crash, disk-full replies, content that would continue our header.
import { afterEach, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { MailError } from "../core/errors.js";
import { silentLogger } from "../core/log.js";
import { CommitJournal, replayJournals } from "./commit-journal.js";
import { DirSyncer } from "./dir-sync.js";
import { Spool, storageError, type Envelope } from "./spool.js";

let dataDir: string;
beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-spool-"));
});
afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

function envelope(local: string[], remote: string[] = [], id = "ID1"): Envelope {
  return {
    id,
    sender: "s@remote.test",
    recipients: [{ address: "list@localhost", route: { local, remote } }],
    helo: "client.test",
    peerAddress: "127.0.0.1",
    hostname: "mx.test",
    protocol: "ESMTP",
    receivedAt: new Date(),
  };
}

function files(address: string, folder: "tmp" | "new"): string[] {
  const [local, domain] = address.split("@");
  const d = path.join(dataDir, "mailboxes", domain!, local!, folder);
  return fs.existsSync(d) ? fs.readdirSync(d).map((f) => path.join(d, f)) : [];
}

async function deliver(env: Envelope, pieces: string[]): Promise<void> {
  const msg = await new Spool(dataDir, silentLogger()).open(env);
  for (const p of pieces) await msg.write([Buffer.from(p, "latin1")]);
  await msg.commit();
}

describe("Spool", () => {
  test("one copy: LF line ends (CRLF split across pieces too), bare CR kept, ,S= file size, ,W= CRLF size", async () => {
    await deliver(envelope(["a@localhost"]), ["Subject: x\r", "\n\r\nline\r\nbare\rcr\n", "end\r"]);
    const [file] = files("a@localhost", "new");
    const bytes = fs.readFileSync(file!);
    const text = bytes.toString("latin1");
    assert.ok(text.startsWith("Return-Path: <s@remote.test>\nReceived: from client.test ([127.0.0.1])\n\tby mx.test (Petrel) with ESMTP id ID1\n\tfor <list@localhost>;\n\t"));
    assert.ok(text.endsWith("\nSubject: x\n\nline\nbare\rcr\nend\r"), JSON.stringify(text));
    const lfs = bytes.filter((b) => b === 10).length;
    assert.match(path.basename(file!), new RegExp(`,S=${bytes.length},W=${bytes.length + lfs}$`));
    assert.deepEqual(files("a@localhost", "tmp"), []);
  });

  test("one copy: its only folder fsync is of tmp/, after the copy took its committed name (none of new/)", async () => {
    const tmp = path.join(dataDir, "mailboxes", "localhost", "a", "tmp");
    const seen: { ino: number; names: string[] }[] = [];
    const syncer = new DirSyncer(async (fh) => {
      seen.push({ ino: (await fh.stat()).ino, names: fs.readdirSync(tmp) });
      await fh.sync();
    });
    const msg = await new Spool(dataDir, silentLogger(), syncer).open(envelope(["a@localhost"]));
    await msg.write([Buffer.from("Subject: x\r\n\r\nbody\r\n")]);
    await msg.commit();
    const [file] = files("a@localhost", "new");
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.ino, fs.statSync(tmp).ino);
    assert.deepEqual(seen[0]!.names, [`${path.basename(file!)},C`]);
    assert.deepEqual(files("a@localhost", "tmp"), []);
  });

  test("one copy whose tmp/ fsync fails: 451, nothing in new/ or tmp/ (the committed name is undone)", async () => {
    const syncer = new DirSyncer(async () => {
      throw Object.assign(new Error("EIO"), { code: "EIO" });
    });
    const msg = await new Spool(dataDir, silentLogger(), syncer).open(envelope(["a@localhost"]));
    await msg.write([Buffer.from("Subject: x\r\n\r\n")]);
    await assert.rejects(msg.commit(), (err: MailError) => err.reply?.code === 451);
    assert.deepEqual([...files("a@localhost", "new"), ...files("a@localhost", "tmp")], []);
  });

  test("onAck runs once, synchronously at the ack, before commit resolves: every copy in new/, no tmp/ file, no journal", async () => {
    const journal = path.join(dataDir, "spool", "journal");
    for (const [users, id] of [[["a@localhost"], "A1"], [["a@localhost", "b@localhost"], "A2"]] as const) {
      const msg = await new Spool(dataDir, silentLogger()).open(envelope([...users], [], id));
      await msg.write([Buffer.from("Subject: x\r\n\r\n")]);
      let resolved = false;
      const seen: { fresh: number; tmp: number; journals: number; resolved: boolean }[] = [];
      const committing = msg.commit(() => {
        seen.push({
          fresh: users.filter((u) => files(u, "new").some((f) => fs.readFileSync(f, "latin1").includes(` id ${id}\n`))).length,
          tmp: users.flatMap((u) => files(u, "tmp")).length,
          journals: fs.existsSync(journal) ? fs.readdirSync(journal).length : 0,
          resolved,
        });
      });
      await committing.then(() => (resolved = true));
      assert.deepEqual(seen, [{ fresh: users.length, tmp: 0, journals: 0, resolved: false }], id);
    }
  });

  test("40 copies (past the 16 written directly): each byte-exact with its own headers; no journal left", async () => {
    const users = Array.from({ length: 40 }, (_, i) => `u${i}@localhost`);
    const body = "Subject: many\r\n\r\n" + "0123456789\r\n".repeat(20000);
    await deliver(envelope(users), [body]);
    for (const u of users) {
      const [file] = files(u, "new");
      assert.ok(file, u);
      assert.ok(fs.readFileSync(file, "latin1").endsWith("\n" + body.replace(/\r\n/g, "\n")), u);
      assert.deepEqual(files(u, "tmp"), []);
    }
    assert.deepEqual(fs.readdirSync(path.join(dataDir, "spool", "journal")), []);
  });

  test("off-site recipients: one queue message and a version 2 envelope, nothing in queue/tmp", async () => {
    await deliver(envelope(["a@localhost"], ["x@far.test", "y@far.test"], "Q1"), ["Subject: q\r\n\r\nq\r\n"]);
    const q = path.join(dataDir, "queue");
    assert.deepEqual(fs.readdirSync(path.join(q, "messages")), ["Q1.eml"]);
    assert.deepEqual(fs.readdirSync(path.join(q, "tmp")), []);
    const env = JSON.parse(fs.readFileSync(path.join(q, "envelopes", "Q1.json"), "utf8")) as { version: number; recipients: { to: string; state: { kind: string } }[] };
    assert.equal(env.version, 2);
    assert.deepEqual(env.recipients.map((r) => [r.to, r.state.kind]), [["x@far.test", "scheduled"], ["y@far.test", "scheduled"]]);
  });

  test("abort leaves nothing", async () => {
    const msg = await new Spool(dataDir, silentLogger()).open(envelope(["a@localhost", "b@localhost"], ["x@far.test"]));
    await msg.write([Buffer.from("Subject: x\r\n\r\n")]);
    await msg.abort();
    assert.deepEqual([...files("a@localhost", "tmp"), ...files("b@localhost", "tmp"), ...fs.readdirSync(path.join(dataDir, "queue", "tmp"))], []);
  });

  test("content starting with SP or HTAB is refused with 550 5.6.0 (it would continue Received)", async () => {
    for (const start of [" ", "\t"]) {
      const msg = await new Spool(dataDir, silentLogger()).open(envelope(["a@localhost"]));
      await assert.rejects(msg.write([Buffer.from(`${start}x: y\r\n\r\n`)]), (err: MailError) => err.reply?.code === 550 && err.reply.enhanced === "5.6.0");
      await msg.abort();
    }
    assert.deepEqual(files("a@localhost", "new"), []);
  });

  test("a removed Maildir is made again by the next delivery", async () => {
    await deliver(envelope(["a@localhost"]), ["Subject: 1\r\n\r\n"]);
    fs.rmSync(path.join(dataDir, "mailboxes", "localhost", "a"), { recursive: true });
    await deliver(envelope(["a@localhost"], [], "ID2"), ["Subject: 2\r\n\r\n"]);
    assert.equal(files("a@localhost", "new").length, 1);
  });

  test("storage errors: ENOSPC and EDQUOT are 452 4.3.1, others 451 4.3.0", () => {
    const errno = (code: string) => Object.assign(new Error(code), { code });
    assert.deepEqual(storageError(errno("ENOSPC")).reply, { code: 452, enhanced: "4.3.1", lines: ["Insufficient system storage"] });
    assert.deepEqual(storageError(errno("EDQUOT")).reply?.code, 452);
    assert.deepEqual(storageError(errno("EIO")).reply, { code: 451, enhanced: "4.3.0", lines: ["Error: local error in processing"] });
  });
});

describe("commit journal replay", () => {
  function setUp(names: string[]): { from: string; to: string }[] {
    const tmp = path.join(dataDir, "mailboxes", "localhost", "a", "tmp");
    const dest = path.join(dataDir, "mailboxes", "localhost", "a", "new");
    fs.mkdirSync(tmp, { recursive: true });
    fs.mkdirSync(dest, { recursive: true });
    return names.map((n) => {
      fs.writeFileSync(path.join(tmp, n), n);
      return { from: path.join(tmp, n), to: path.join(dest, `${n},S=1`) };
    });
  }

  test("a journal found at start in the same boot (the client got no 250) is undone: visible copies and temporaries go", async () => {
    const renames = setUp(["1", "2", "3"]);
    await CommitJournal.write(dataDir, "J1", renames);
    fs.renameSync(renames[0]!.from, renames[0]!.to); // the first copy was visible when the crash came
    const r = await replayJournals(dataDir, "same");
    assert.deepEqual(r, { undone: 1, completed: 0, files: 3 });
    for (const x of renames) assert.ok(!fs.existsSync(x.to) && !fs.existsSync(x.from));
    assert.deepEqual(fs.readdirSync(path.join(dataDir, "spool", "journal")), []);
  });

  test("a commit that fails before its commit point leaves no copy and no journal", async () => {
    const spool = new Spool(dataDir, silentLogger());
    const msg = await spool.open(envelope(["a@localhost", "b@localhost"]));
    await msg.write([Buffer.from("Subject: x\r\n\r\n")]);
    fs.rmSync(path.join(dataDir, "mailboxes", "localhost", "b", "new"), { recursive: true }); // the second rename fails
    await assert.rejects(msg.commit(), (err: MailError) => err.reply?.code === 451);
    assert.deepEqual([...files("a@localhost", "new"), ...files("a@localhost", "tmp"), ...files("b@localhost", "tmp")], []);
    assert.deepEqual(fs.readdirSync(path.join(dataDir, "spool", "journal")), []);
  });

  test("a journal cut short (not JSON) is removed; no rename can have started after it", async () => {
    fs.mkdirSync(path.join(dataDir, "spool", "journal"), { recursive: true });
    fs.writeFileSync(path.join(dataDir, "spool", "journal", "J3.json"), '{"version":1,"id":"J3","ren');
    assert.deepEqual(await replayJournals(dataDir, "same"), { undone: 1, completed: 0, files: 0 });
    assert.deepEqual(fs.readdirSync(path.join(dataDir, "spool", "journal")), []);
  });
});
