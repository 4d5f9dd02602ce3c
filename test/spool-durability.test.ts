// End-to-end durability of the spool (issue 7): exactly-once commit under injected faults and
// SIGKILL (PETREL_FAULT), in the same boot (undone before the ack) and after a simulated reboot
// (a different <data_dir>/boot_id: completed once durably committed), startup recovery and its
// sweep, the data_dir lock, disk full on a small tmpfs (452 4.3.1), a removed Maildir, a big list
// under `ulimit -n 128`, LF Maildir files that Python's mailbox reads and POP3 sizes, and content
// that would continue our Received header.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { AccountStore } from "../src/store/account-store.js";
import { PETREL_BIN, startTestServer, type StartOptions, type TestServer } from "./helpers/server.js";
import { RawPop3 } from "./helpers/pop3-client.js";
import { RawSmtp, type RawReply } from "./helpers/smtp-client.js";
import { command, dataStream, greeted, sendMessage } from "./smtp-protocol-helpers.js";

const MEMBERS = ["m1@localhost", "m2@localhost", "m3@localhost"];
const USERS = MEMBERS.map((a) => [a, "pw"] as const);

/** Every file under data_dir that a finished commit must not leave: tmp/ copies, queue temporaries, journals. */
function leftovers(dataDir: string): string[] {
  const out: string[] = [];
  const mb = path.join(dataDir, "mailboxes");
  for (const d of fs.existsSync(mb) ? fs.readdirSync(mb) : [])
    for (const u of fs.readdirSync(path.join(mb, d))) {
      const tmp = path.join(mb, d, u, "tmp");
      if (fs.existsSync(tmp)) out.push(...fs.readdirSync(tmp).map((f) => path.join(tmp, f)));
    }
  for (const sub of ["queue/tmp", "spool/journal"]) {
    const d = path.join(dataDir, sub);
    if (fs.existsSync(d)) out.push(...fs.readdirSync(d).map((f) => path.join(d, f)));
  }
  // A queued message without its envelope (or the reverse) is an orphan.
  const msgs = path.join(dataDir, "queue", "messages"), envs = path.join(dataDir, "queue", "envelopes");
  const ids = (d: string, ext: string) => new Set((fs.existsSync(d) ? fs.readdirSync(d) : []).map((f) => (f.endsWith(ext) ? f.slice(0, -ext.length) : f)));
  const m = ids(msgs, ".eml"), e = ids(envs, ".json");
  for (const id of m) if (!e.has(id)) out.push(path.join(msgs, id));
  for (const id of e) if (!m.has(id)) out.push(path.join(envs, id));
  return out;
}

/** Copies of the message with this subject: per local member, and queued for the remote member. */
function copies(server: { dataDir: string; mailbox(a: string): string[] }, subject: string): number[] {
  const local = MEMBERS.map((a) => server.mailbox(a).filter((f) => fs.readFileSync(f, "latin1").includes(`\nSubject: ${subject}\n`)).length);
  const q = path.join(server.dataDir, "queue", "messages");
  const queued = (fs.existsSync(q) ? fs.readdirSync(q) : []).filter((f) => fs.readFileSync(path.join(q, f), "latin1").includes(`\nSubject: ${subject}\n`)).length;
  return [...local, queued];
}

async function restart(dir: string, opts: StartOptions = {}): Promise<TestServer> {
  return startTestServer({ dir, keepDir: true, ...opts });
}

/** MAIL, RCPT to the list, DATA; the final reply, or null when the server died without one. */
async function sendToList(port: number, subject: string): Promise<RawReply | null> {
  const c = await greeted(port);
  await command(c, "MAIL FROM:<s@remote.test>", 250, "2.1.0");
  await command(c, "RCPT TO:<team@localhost>", 250, "2.1.5");
  await command(c, "DATA", 354, null);
  c.write(dataStream(Buffer.from(`From: s@remote.test\r\nSubject: ${subject}\r\n\r\nbody\r\n`)));
  try {
    return await c.reply(10_000);
  } catch (err) {
    assert.ok(c.closed, String(err));
    return null;
  } finally {
    c.close();
  }
}

async function listServer(env: NodeJS.ProcessEnv = {}): Promise<TestServer> {
  const server = await startTestServer({ users: USERS, keepDir: true, env });
  const r = server.petrel(["list", "add", "team@localhost", ...MEMBERS, "far@remote.test"]);
  assert.equal(r.status, 0, r.stderr);
  return server;
}

// With several files the ack is the journal's unlink, after the folder fsyncs.
const BEFORE_ACK = ["after-open", "after-write", "after-tmp-fsync", "after-queue-write", "after-journal", "after-first-rename", "after-renames", "after-folder-fsync"];
const AFTER_ACK = ["after-ack"];

/** Waits for the SIGKILL an injected fault sent the server. */
async function killed(server: TestServer): Promise<void> {
  if (server.process.exitCode === null && server.process.signalCode === null) await new Promise((r) => server.process.once("exit", r));
  assert.equal(server.process.signalCode, "SIGKILL");
}

/** What a reboot leaves for recovery to see: a boot id unlike the kernel's (the files are as the kill left them). */
function simulateReboot(dataDir: string): void {
  fs.writeFileSync(path.join(dataDir, "boot_id"), "00000000-0000-0000-0000-000000000000\n");
}

interface Recovered {
  boot: "same" | "new";
  journals: { undone: number; completed: number };
  committed: { completed: number; removed: number };
  maildirTmp: { files: number };
}

function recovered(server: TestServer): Recovered {
  const line = server.logLines().find((l) => l.msg === "recovered") as Recovered | undefined;
  assert.ok(line, "recovery logged what it did");
  return line;
}

/**
 * Sends to a server set to kill itself (send asserts no reply came), waits for the SIGKILL,
 * restarts on the same data_dir (after a simulated reboot when asked) and checks the result.
 */
async function killAndRestart(server: TestServer, send: () => Promise<void>, boot: "same" | "new", check: (again: TestServer) => Promise<void> | void): Promise<void> {
  try {
    await send();
    await killed(server);
    if (boot === "new") simulateReboot(server.dataDir);
    const again = await restart(server.dir);
    try {
      assert.equal(recovered(again).boot, boot);
      await check(again);
    } finally {
      await again.stop();
    }
  } finally {
    await server.stop();
    fs.rmSync(server.dir, { recursive: true, force: true });
  }
}

/** Before the ack the kill leaves the client without a reply; after it, the 250 is already out. */
const sendToListKilled = (server: TestServer, subject: string, acked: boolean) => async () => {
  const r = await sendToList(server.smtpPort, subject);
  if (acked) assert.match(r?.raw ?? "(no reply)", /^250 2\.0\.0 /, "the 250 is written at the ack, before the kill");
  else assert.equal(r, null, "the client got no reply");
};

describe("exactly-once commit: SIGKILL at every step, then recovery (same boot) shows every copy (after the ack) or none", () => {
  for (const point of [...BEFORE_ACK, ...AFTER_ACK]) {
    const acked = !BEFORE_ACK.includes(point);
    test(`kill ${point}: ${acked ? "250 already sent; after restart every copy" : "no reply; after restart no copy"}, no leftovers`, async () => {
      const server = await listServer({ PETREL_FAULT: `${point}:kill` });
      await killAndRestart(server, sendToListKilled(server, "killed", acked), "same", async (again) => {
        const want = BEFORE_ACK.includes(point) ? 0 : 1;
        assert.deepEqual(copies(again, "killed"), [want, want, want, want]);
        assert.deepEqual(leftovers(again.dataDir), []);
        assert.equal(recovered(again).journals.completed, 0);
        // The next message is delivered normally.
        assert.equal((await sendToList(again.smtpPort, "after"))?.code, 250);
        assert.deepEqual(copies(again, "after"), [1, 1, 1, 1]);
      });
    });
  }
});

/** MAIL, RCPT alice, DATA to a server that kills itself at a fault point; no reply before the ack, 250 after it. */
async function sendSingleKilled(server: TestServer, subject: string, acked = false): Promise<void> {
  const c = await greeted(server.smtpPort);
  await command(c, "MAIL FROM:<s@remote.test>", 250, "2.1.0");
  await command(c, "RCPT TO:<alice@localhost>", 250, "2.1.5");
  await command(c, "DATA", 354, null);
  c.write(dataStream(Buffer.from(`Subject: ${subject}\r\n\r\nx\r\n`)));
  await c.waitClosed(10_000);
  if (acked) assert.match(c.pending, /^250 2\.0\.0 /, "the 250 is written at the ack, before the kill");
  else assert.equal(c.pending, "", "no reply");
}

describe("exactly-once commit of a single copy (committed name in tmp/, fsync of tmp/, the rename into new/ is the ack): SIGKILL around it", () => {
  const cases: [string, number, keyof Pick<Recovered, "committed" | "maildirTmp">][] = [
    ["after-tmp-fsync", 0, "maildirTmp"],
    ["after-mark", 0, "committed"],
    ["after-mark-fsync", 0, "committed"],
    ["after-ack", 1, "committed"],
  ];
  for (const [point, want, swept] of cases) {
    test(`kill ${point}: ${want ? "250 already sent" : "no reply"}; after restart (same boot) ${want} cop${want ? "y" : "ies"}, no leftovers`, async () => {
      const server = await startTestServer({ users: [["alice@localhost", "pw"]], keepDir: true, env: { PETREL_FAULT: `${point}:kill` } });
      await killAndRestart(server, () => sendSingleKilled(server, "single", want === 1), "same", (again) => {
        assert.equal(again.mailbox("alice@localhost").length, want);
        assert.deepEqual(leftovers(again.dataDir), []);
        const rec = recovered(again);
        const cut = want ? 0 : 1;
        if (swept === "maildirTmp") assert.equal(rec.maildirTmp.files, cut, "the cut copy in tmp/ was swept");
        else assert.deepEqual(rec.committed, { completed: 0, removed: cut }, "the committed copy in tmp/ was removed: no 250 was sent");
      });
    });
  }
});

describe("after a reboot (simulated: another boot_id) recovery completes every message committed durably before the kill", () => {
  for (const [point, want] of [["after-tmp-fsync", 0], ["after-mark", 1], ["after-mark-fsync", 1]] as const) {
    test(`single copy, kill ${point}: after the reboot ${want} cop${want ? "y" : "ies"} in new/, no leftovers`, async () => {
      const server = await startTestServer({ users: [["alice@localhost", "pw"]], keepDir: true, env: { PETREL_FAULT: `${point}:kill` } });
      await killAndRestart(server, () => sendSingleKilled(server, "rebooted"), "new", (again) => {
        const files = again.mailbox("alice@localhost");
        assert.equal(files.length, want);
        for (const f of files) {
          const text = fs.readFileSync(f, "latin1");
          assert.ok(text.endsWith("\nSubject: rebooted\n\nx\n"), text);
          assert.equal(Number(/,S=(\d+)/.exec(f)![1]), Buffer.byteLength(text, "latin1"), "its final name has its size");
        }
        assert.deepEqual(leftovers(again.dataDir), []);
        assert.deepEqual(recovered(again).committed, { completed: want, removed: 0 });
        assert.equal(fs.readFileSync(path.join(again.dataDir, "boot_id"), "utf8").trim(), fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim(), "this boot is recorded");
      });
    });
  }

  for (const point of ["after-journal", "after-first-rename", "after-folder-fsync"]) {
    test(`list + queue (journal), kill ${point}: after the reboot every copy exactly once, no leftovers`, async () => {
      const server = await listServer({ PETREL_FAULT: `${point}:kill` });
      await killAndRestart(server, sendToListKilled(server, "rebooted", false), "new", (again) => {
        assert.deepEqual(copies(again, "rebooted"), [1, 1, 1, 1]);
        assert.deepEqual(leftovers(again.dataDir), []);
        const rec = recovered(again);
        assert.deepEqual([rec.journals.completed, rec.journals.undone], [1, 0]);
      });
    });
  }
});

describe("exactly-once commit: a failing step (ENOSPC, EIO, EMFILE) before the ack: 451/452, no copy", () => {
  // Nothing that can fail follows the ack ("after-ack" is for kill only).
  const cases: [string, string][] = [
    ...BEFORE_ACK.map((p) => [p, "ENOSPC"] as [string, string]),
    ["after-tmp-fsync", "EIO"],
    ["after-journal", "EMFILE"],
    ["after-first-rename", "EIO"],
    ["after-folder-fsync", "EMFILE"],
  ];
  const expected = (code: string) => (code === "ENOSPC" ? "452 4.3.1" : "451 4.3.0");
  for (const [point, code] of cases) {
    test(`list: ${code} ${point}: ${expected(code)}, no copy, no leftovers`, async () => {
      const server = await listServer({ PETREL_FAULT: `${point}:${code}` });
      try {
        const r = await sendToList(server.smtpPort, "faulty");
        assert.ok(r, "a reply");
        assert.equal(r.raw.slice(0, 9), expected(code), r.raw);
        assert.deepEqual(copies(server, "faulty"), [0, 0, 0, 0]);
        assert.deepEqual(leftovers(server.dataDir), []);
      } finally {
        await server.stop();
        fs.rmSync(server.dir, { recursive: true, force: true });
      }
    });
  }

  for (const [point, code] of [["after-mark", "EIO"], ["after-mark-fsync", "ENOSPC"]] as const) {
    test(`single copy: ${code} ${point}: ${expected(code)}, no copy, nothing in tmp/`, async () => {
      const server = await startTestServer({ users: [["alice@localhost", "pw"]], env: { PETREL_FAULT: `${point}:${code}` } });
      try {
        const c = await greeted(server.smtpPort);
        await command(c, "MAIL FROM:<s@remote.test>", 250, "2.1.0");
        await command(c, "RCPT TO:<alice@localhost>", 250, "2.1.5");
        await command(c, "DATA", 354, null);
        c.write(dataStream(Buffer.from("Subject: faulty\r\n\r\nx\r\n")));
        assert.equal((await c.reply()).raw.slice(0, 9), expected(code));
        c.close();
        assert.deepEqual(server.mailbox("alice@localhost"), []);
        assert.deepEqual(leftovers(server.dataDir), []);
      } finally {
        await server.stop();
      }
    });
  }
});

describe("startup recovery and the data_dir lock", () => {
  test("a second petrel serve on the same data_dir is refused with one line naming the pid", async () => {
    const server = await startTestServer({});
    try {
      const r = spawnSync(PETREL_BIN, ["serve", "--config", server.configPath], { encoding: "utf8", timeout: 15_000 });
      assert.equal(r.status, 1);
      assert.equal(r.stderr.trim(), `petrel: cannot start: data_dir ${server.dataDir} is in use by another petrel serve (pid ${server.process.pid})`);
    } finally {
      await server.stop();
    }
  });

  test("after SIGKILL the lock is free: the next serve starts", async () => {
    const server = await startTestServer({ keepDir: true });
    await server.stop("SIGKILL");
    const again = await restart(server.dir);
    await again.stop();
    fs.rmSync(server.dir, { recursive: true, force: true });
  });

  test("own tmp/ files go at once, foreign ones after 36 h, queue orphans too; counts and bytes are logged", async () => {
    const server = await startTestServer({ users: [["alice@localhost", "pw"]], keepDir: true });
    await sendMessage(await greeted(server.smtpPort), "s@remote.test", ["alice@localhost"], Buffer.from("Subject: x\r\n\r\nx\r\n"));
    await server.stop();
    const tmp = path.join(server.dataDir, "mailboxes", "localhost", "alice", "tmp");
    const host = os.hostname();
    fs.writeFileSync(path.join(tmp, `1700000000.M1P999999Q1.${host}`), "x".repeat(1000)); // ours, from a dead process
    fs.writeFileSync(path.join(tmp, "1700000000.M1P1Q1.other-host"), "y".repeat(10)); // foreign, fresh: kept
    const old = path.join(tmp, "1600000000.12345_1.other-host");
    fs.writeFileSync(old, "z".repeat(20)); // foreign, 3 days old: removed
    const past = new Date(Date.now() - 72 * 3600 * 1000);
    fs.utimesSync(old, past, past);
    const q = path.join(server.dataDir, "queue");
    for (const d of ["tmp", "messages", "envelopes"]) fs.mkdirSync(path.join(q, d), { recursive: true });
    fs.writeFileSync(path.join(q, "tmp", "X1.eml"), "a");
    fs.writeFileSync(path.join(q, "messages", "X2.eml"), "bb"); // no envelope
    fs.writeFileSync(path.join(q, "envelopes", "X3.json.tmp4242"), "ccc"); // an old version's temporary
    const again = await restart(server.dir);
    try {
      assert.deepEqual(fs.readdirSync(tmp), ["1700000000.M1P1Q1.other-host"]);
      assert.deepEqual([...fs.readdirSync(path.join(q, "tmp")), ...fs.readdirSync(path.join(q, "messages")), ...fs.readdirSync(path.join(q, "envelopes"))], []);
      const rec = again.logLines().find((l) => l.msg === "recovered") as Record<string, { files: number; bytes: number }>;
      assert.deepEqual(rec.maildirTmp, { files: 1, bytes: 1000 });
      assert.deepEqual(rec.foreignTmp, { files: 1, bytes: 20 });
      assert.deepEqual(rec.queue, { files: 3, bytes: 6 });
      assert.equal(again.mailbox("alice@localhost").length, 1, "delivered mail untouched");
    } finally {
      await again.stop();
      fs.rmSync(server.dir, { recursive: true, force: true });
    }
  });
});

describe("disk full and a removed Maildir", () => {
  test("a message bigger than the free space on data_dir gets 452 4.3.1; nothing stays in tmp/", async (t) => {
    if (process.getuid?.() !== 0) return t.skip("needs root to mount a tmpfs (CI runs as root)");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-full-"));
    const data = path.join(dir, "data");
    fs.mkdirSync(data);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", data]);
    let server: TestServer | undefined;
    try {
      server = await startTestServer({ dir, keepDir: true, users: [["alice@localhost", "pw"]], toml: "[limits]\nmax_message_size = 8000000\n" });
      const c = await greeted(server.smtpPort);
      await command(c, "MAIL FROM:<s@remote.test>", 250, "2.1.0");
      await command(c, "RCPT TO:<alice@localhost>", 250, "2.1.5");
      await command(c, "DATA", 354, null);
      const line = "x".repeat(998) + "\r\n";
      c.write(dataStream(Buffer.from("Subject: big\r\n\r\n" + line.repeat(3000))));
      const r = await c.reply(30_000);
      assert.equal(r.raw, "452 4.3.1 Insufficient system storage\r\n");
      assert.deepEqual(leftovers(server.dataDir), []);
      assert.deepEqual(server.mailbox("alice@localhost"), []);
      // Space is back once the failed message is gone: a small one is delivered.
      await sendMessage(c, "s@remote.test", ["alice@localhost"], Buffer.from("Subject: small\r\n\r\nok\r\n"));
      c.close();
    } finally {
      await server?.stop();
      execFileSync("umount", [data]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("rm -rf of a Maildir: the next delivery makes it again (250 and the file is there)", async () => {
    const server = await startTestServer({ users: [["alice@localhost", "pw"]] });
    try {
      const c = await greeted(server.smtpPort);
      await sendMessage(c, "s@remote.test", ["alice@localhost"], Buffer.from("Subject: one\r\n\r\n1\r\n"));
      fs.rmSync(path.join(server.dataDir, "mailboxes", "localhost", "alice"), { recursive: true });
      const id = await sendMessage(c, "s@remote.test", ["alice@localhost"], Buffer.from("Subject: two\r\n\r\n2\r\n"));
      const files = server.mailbox("alice@localhost");
      assert.equal(files.length, 1);
      assert.ok(fs.readFileSync(files[0]!, "latin1").includes(` id ${id}\n`));
      c.close();
    } finally {
      await server.stop();
    }
  });
});

describe("a 300-member list under ulimit -n 128", () => {
  let server: TestServer;
  const members = Array.from({ length: 300 }, (_, i) => `u${i}@localhost`);
  before(async () => {
    // 300 `petrel user add` runs (scrypt each) would take a minute: add one user, copy its row.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-test-"));
    const store = new AccountStore(path.join(dir, "data"), ["localhost", "example.test"]);
    store.addUser(members[0]!, "pw");
    store.close();
    const db = new Database(path.join(dir, "data", "petrel.db"));
    const copy = db.prepare("INSERT INTO users (address, local, domain, name, password, apop_secret, created) SELECT ?, ?, domain, name, password, apop_secret, created FROM users WHERE address = ?");
    db.transaction(() => members.slice(1).forEach((m) => copy.run(m, m.split("@")[0], members[0])))();
    db.close();
    const again = new AccountStore(path.join(dir, "data"), ["localhost", "example.test"]);
    again.addListMembers("all@localhost", members);
    again.close();
    server = await startTestServer({ dir, shellPrefix: "ulimit -n 128;" });
  });
  after(async () => {
    await server.stop();
  });

  test("250 and 300 byte-exact copies, each with its own Received for", async () => {
    const limits = fs.readFileSync(`/proc/${server.process.pid}/limits`, "utf8");
    assert.match(limits, /Max open files\s+128\s+128/);
    const c = await greeted(server.smtpPort);
    const body = "Subject: to all\r\n\r\n" + "line of the list message\r\n".repeat(5000);
    const id = await sendMessage(c, "s@remote.test", ["all@localhost"], Buffer.from(body));
    c.close();
    for (const m of members) {
      const files = server.mailbox(m);
      assert.equal(files.length, 1, m);
      const text = fs.readFileSync(files[0]!, "latin1");
      assert.ok(text.includes(` id ${id}\n\tfor <all@localhost>;\n`), m);
      assert.ok(text.endsWith(body.replace(/\r\n/g, "\n")), `${m}: content byte-exact`);
      assert.equal(Number(/,S=(\d+)/.exec(files[0]!)![1]), Buffer.byteLength(text));
    }
    assert.deepEqual(leftovers(server.dataDir), []);
  });
});

describe("LF Maildir files, POP3 sizes and trace header safety", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: [["alice@localhost", "pw"]] });
  });
  after(async () => {
    await server.stop();
  });

  test("stored with LF (no CR before LF); ,S= is the file size; Python mailbox reads it; POP3 LIST = octets RETR sends", async () => {
    const c = await greeted(server.smtpPort);
    const content = "From: a@remote.test\r\nSubject: lf\r\n\r\nline 1\r\n.dot line\r\n\r\nlast\r\n";
    await sendMessage(c, "a@remote.test", ["alice@localhost"], Buffer.from(content));
    c.close();
    const [file] = server.mailbox("alice@localhost");
    const bytes = fs.readFileSync(file!);
    assert.ok(!bytes.includes("\r\n"), "no CRLF in the file");
    assert.equal(Number(/,S=(\d+)/.exec(file!)![1]), bytes.length);
    const py = spawnSync(
      "python3",
      ["-c", "import mailbox,os,sys\nmd=mailbox.Maildir(sys.argv[1],factory=None,create=False)\nfor k,m in md.items():\n  print(m['Subject'], os.path.getsize(os.path.join(sys.argv[1],md._lookup(k))))", path.dirname(path.dirname(file!))],
      { encoding: "utf8" },
    );
    assert.equal(py.status, 0, py.stderr);
    assert.equal(py.stdout.trim(), `lf ${bytes.length}`);
    const { client } = await RawPop3.open(server.pop3Port!);
    assert.match(await client.command("USER alice@localhost"), /^\+OK/);
    assert.match(await client.command("PASS pw"), /^\+OK/);
    const list = await client.command("LIST 1");
    const size = Number(/^\+OK 1 (\d+)/.exec(list)![1]);
    const retr = await client.multiCommand("RETR 1");
    const wire = retr.body; // byte-stuffed, without the final ".CRLF"
    const unstuffed = Buffer.from(wire.toString("latin1").replace(/^\.\./gm, "."), "latin1");
    assert.equal(unstuffed.length, size, "LIST size = octets RETR sends (before stuffing)");
    assert.ok(unstuffed.toString("latin1").endsWith(content), "RETR sends CRLF line ends, the content as received");
    await client.command("QUIT");
  });

  test("content starting with white space would continue Received: 550 5.6.0, nothing stored", async () => {
    const c = await greeted(server.smtpPort);
    const before = server.mailbox("alice@localhost").length;
    await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<alice@localhost>", 250, "2.1.5");
    await command(c, "DATA", 354, null);
    c.write(dataStream(Buffer.from(" injected: yes\r\nSubject: x\r\n\r\nbody\r\n")));
    assert.equal((await c.reply()).raw.slice(0, 9), "550 5.6.0");
    c.close();
    assert.equal(server.mailbox("alice@localhost").length, before);
    assert.deepEqual(leftovers(server.dataDir), []);
  });

  test("an EHLO name with 8-bit control characters is refused at the door (501 5.5.2); nothing reaches a header", async () => {
    // The trace headers replace such characters too (src/spool/trace-headers.test.ts); the session
    // does not let them that far.
    const c = await RawSmtp.connect(server.smtpPort);
    await c.reply();
    c.write(Buffer.from("EHLO bad\xc2\x85name\r\n", "latin1"));
    const r = await c.reply();
    assert.equal(r.code, 501);
    assert.match(r.raw, /^501 5\.5\.2 /);
    c.close();
  });
});
