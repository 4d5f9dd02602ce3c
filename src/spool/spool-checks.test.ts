// Unit tests of the spool's inbound-check stage with fake checks: which mail is checked, content streamed
// into every run (CRLF as received) and the staged copy read back, verdicts (accept, junk, reject), the
// checks' header fields between Return-Path and Received, copies byte-exact (past the 16 direct ones
// too), .Junk for local copies only, nothing left after a reject or an abort, and the
// Authentication-Results filter on checkable mail only.
import { afterEach, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { MailError } from "../core/errors.js";
import { silentLogger } from "../core/log.js";
import { reply } from "../core/reply.js";
import type { CheckContext, CheckResult, MessageCheck, StagedMessage } from "../trust/message-check.js";
import { DirSyncer } from "./dir-sync.js";
import { Spool, type Envelope } from "./spool.js";

let dataDir: string;
beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-spool-checks-"));
});
afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

interface FakeCheck extends MessageCheck {
  readonly started: CheckContext[];
  /** Content each run received through write(). */
  readonly written: Buffer[][];
  /** Content each run read from the staged message, and the size it was told. */
  readonly staged: { size: number; content: Buffer }[];
  aborted: number;
}

function fakeCheck(name: string, result: CheckResult | (() => Promise<CheckResult>), opts: { skip?: boolean } = {}): FakeCheck {
  const check: FakeCheck = {
    name,
    started: [],
    written: [],
    staged: [],
    aborted: 0,
    start(ctx) {
      check.started.push(ctx);
      if (opts.skip) return null;
      const chunks: Buffer[] = [];
      check.written.push(chunks);
      return {
        write: (chunk) => void chunks.push(Buffer.from(chunk)),
        finish: async (message: StagedMessage) => {
          const read: Buffer[] = [];
          for await (const c of message.open() as AsyncIterable<Buffer>) read.push(c);
          check.staged.push({ size: message.size, content: Buffer.concat(read) });
          return typeof result === "function" ? result() : result;
        },
        abort: () => void check.aborted++,
      };
    },
  };
  return check;
}

const accept = (...headers: string[]): CheckResult => ({ headers, verdict: { kind: "accept" } });
const junk = (...headers: string[]): CheckResult => ({ headers, verdict: { kind: "junk", reason: "spam" } });

function envelope(local: string[], remote: string[] = [], more: Partial<Envelope> = {}): Envelope {
  return {
    id: "ID1",
    sender: "s@remote.test",
    recipients: [{ address: "list@localhost", route: { local, remote } }],
    helo: "client.test",
    peerAddress: "192.0.2.9",
    client: { kind: "confirmed", name: "client.test" },
    hostname: "mx.test",
    protocol: "ESMTP",
    source: "smtp",
    listener: "smtp",
    authenticated: false,
    receivedAt: new Date(),
    ...more,
  };
}

function spool(checks: MessageCheck[], trusted: string[] = []): Spool {
  const list = new net.BlockList();
  for (const t of trusted) list.addSubnet(t.split("/")[0]!, Number(t.split("/")[1]), t.includes(":") ? "ipv6" : "ipv4");
  return new Spool(dataDir, silentLogger(), new DirSyncer(), { checks, trustedNetworks: list });
}

function files(address: string, folder: string): string[] {
  const [local, domain] = address.split("@");
  const d = path.join(dataDir, "mailboxes", domain!, local!, folder);
  return fs.existsSync(d) ? fs.readdirSync(d).map((f) => path.join(d, f)) : [];
}

/** Every file under data_dir except the Maildir and queue folders themselves (for "nothing left"). */
function allFiles(dir = dataDir): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? allFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

const CONTENT = "From: a@remote.test\r\nSubject: checked\r\n\r\nline one\r\nbare\nlf\r\n";
const CONTENT_LF = CONTENT.replace(/\r\n/g, "\n");

async function deliver(s: Spool, env: Envelope, pieces: string[]): Promise<void> {
  const msg = await s.open(env);
  try {
    for (const p of pieces) await msg.write([Buffer.from(p, "latin1")]);
    await msg.commit();
  } catch (err) {
    await msg.abort();
    throw err;
  }
}

/** The header block Petrel put above the content, and the content, of a stored copy. */
function split(file: string): { head: string; content: string } {
  const text = fs.readFileSync(file, "latin1");
  const at = text.indexOf("\nFrom: a@remote.test\n");
  return { head: text.slice(0, at + 1), content: text.slice(at + 1) };
}

describe("the spool's inbound checks", () => {
  test("accept: each run gets the content as received (CRLF) while it streams and the same bytes staged; fields go between Return-Path and Received", async () => {
    const a = fakeCheck("a", accept("X-Check-A: 1\r\n"));
    const b = fakeCheck("b", accept("Authentication-Results: mx.test;\r\n\tspf=pass smtp.mailfrom=s@remote.test\r\n", "Received-SPF: pass\r\n"));
    await deliver(spool([a, b]), envelope(["u@localhost"]), [CONTENT.slice(0, 10), CONTENT.slice(10)]);
    for (const c of [a, b]) {
      assert.equal(Buffer.concat(c.written[0]!).toString("latin1"), CONTENT);
      // The staged copy restores CRLF, a bare LF included: the size is what open() gives.
      const restored = CONTENT.replace(/\r?\n/g, "\r\n");
      assert.deepEqual(c.staged.map((s) => [s.size, s.content.toString("latin1")]), [[restored.length, restored]]);
    }
    assert.deepEqual(a.started[0], { id: "ID1", peerAddress: "192.0.2.9", helo: "client.test", ptrName: "client.test", receivedFrom: "from client.test (client.test [192.0.2.9])", sender: "s@remote.test", recipients: ["list@localhost"], authenticated: false, tls: false });
    const [file] = files("u@localhost", "new");
    const { head, content } = split(file!);
    assert.match(
      head,
      /^Return-Path: <s@remote\.test>\nX-Check-A: 1\nAuthentication-Results: mx\.test;\n\tspf=pass smtp\.mailfrom=s@remote\.test\nReceived-SPF: pass\nReceived: from client\.test \(client\.test \[192\.0\.2\.9\]\)\n\tby mx\.test \(Petrel\) with ESMTP id ID1\n\tfor <list@localhost>;\n\t[^\n]+\n$/,
    );
    assert.equal(content, CONTENT_LF);
    const bytes = fs.statSync(file!).size;
    const lfs = fs.readFileSync(file!).filter((x) => x === 10).length;
    assert.match(path.basename(file!), new RegExp(`,S=${bytes},W=${bytes + lfs}$`));
    assert.deepEqual(allFiles(path.join(dataDir, "spool", "staging")), [], "the staging file is removed");
  });

  test("junk: local copies go to the Maildir++ .Junk folder (created with maildirfolder), the queue copy is only tagged", async () => {
    const c = fakeCheck("bayes", junk("X-Spam-Status: Yes\r\n"));
    await deliver(spool([c]), envelope(["u@localhost", "v@localhost"], ["x@far.test"]), [CONTENT]);
    for (const u of ["u@localhost", "v@localhost"]) {
      assert.deepEqual(files(u, "new"), []);
      const [file] = files(u, ".Junk/new");
      assert.ok(file, u);
      assert.match(split(file).head, /^Return-Path: <s@remote\.test>\nX-Spam-Status: Yes\nReceived: /);
      assert.equal(split(file).content, CONTENT_LF);
      assert.ok(fs.statSync(path.join(dataDir, "mailboxes", "localhost", u.split("@")[0]!, ".Junk", "maildirfolder")).isFile());
      assert.deepEqual([...files(u, ".Junk/tmp"), ...files(u, "tmp")], []);
    }
    const queued = fs.readFileSync(path.join(dataDir, "queue", "messages", "ID1.eml"), "latin1");
    assert.match(queued, /^X-Spam-Status: Yes\nReceived: from client\.test /);
    assert.ok(queued.endsWith("\n" + CONTENT_LF));
  });

  test("junk for a single copy takes the one-copy commit path into .Junk/new", async () => {
    await deliver(spool([fakeCheck("c", junk())]), envelope(["u@localhost"]), [CONTENT]);
    assert.equal(files("u@localhost", ".Junk/new").length, 1);
    assert.deepEqual(files("u@localhost", "new"), []);
  });

  test("reject (any check) wins: the MailError carries the reply, nothing is committed or left behind", async () => {
    const ok = fakeCheck("ok", accept("X-A: 1\r\n"));
    const no = fakeCheck("no", { headers: [], verdict: { kind: "reject", reply: reply(550, "5.7.1", "DMARC policy of example.test says reject"), reason: "dmarc" } });
    const spam = fakeCheck("spam", junk());
    await assert.rejects(deliver(spool([ok, spam, no]), envelope(["u@localhost", "v@localhost"], ["x@far.test"]), [CONTENT]), (err: MailError) => {
      assert.deepEqual(err.reply, { code: 550, enhanced: "5.7.1", lines: ["DMARC policy of example.test says reject"] });
      return true;
    });
    assert.deepEqual(allFiles().filter((f) => !f.endsWith("maildirfolder")), []);
    assert.equal(ok.aborted + no.aborted + spam.aborted, 0, "finished runs are not aborted");
  });

  test("abort before the end releases every run and removes the staged content", async () => {
    const a = fakeCheck("a", accept());
    const b = fakeCheck("b", accept());
    const msg = await spool([a, b]).open(envelope(["u@localhost"]));
    await msg.write([Buffer.from(CONTENT)]);
    await msg.abort();
    assert.deepEqual([a.aborted, b.aborted], [1, 1]);
    assert.deepEqual(allFiles(), []);
  });

  test("20 copies (past the 16 written directly): all made from the staged content at commit, byte-exact", async () => {
    const users = Array.from({ length: 20 }, (_, i) => `u${i}@localhost`);
    const body = CONTENT + "0123456789\r\n".repeat(15000);
    await deliver(spool([fakeCheck("a", accept("X-A: 1\r\n"))]), envelope(users), [body]);
    for (const u of users) {
      const [file] = files(u, "new");
      assert.ok(file, u);
      const { head, content } = split(file);
      assert.match(head, /^Return-Path: <s@remote\.test>\nX-A: 1\nReceived: /);
      assert.equal(content, body.replace(/\r\n/g, "\n"), u);
    }
    assert.deepEqual(allFiles(path.join(dataDir, "spool", "staging")), []);
  });

  test("staging: a message within one 64 KB batch stays in memory, a larger one goes to one staging file, removed after commit", async () => {
    const staging = path.join(dataDir, "spool", "staging");
    const seen: number[] = [];
    const watch = fakeCheck("watch", async () => {
      seen.push(fs.existsSync(staging) ? fs.readdirSync(staging).length : 0);
      return accept();
    });
    const big = CONTENT + "z".repeat(100) + "\r\n".repeat(1) + ("0123456789".repeat(10) + "\r\n").repeat(1500);
    const s = spool([watch]);
    await deliver(s, envelope(["u@localhost"]), [CONTENT]);
    await deliver(s, envelope(["u@localhost"], ["x@far.test"], { id: "ID2" }), [big.slice(0, 70000), big.slice(70000)]);
    assert.deepEqual(seen, [0, 1]);
    const crlf = (t: string) => t.replace(/\r?\n/g, "\r\n");
    assert.deepEqual(watch.staged.map((x) => [x.size, x.content.length]), [[crlf(CONTENT).length, crlf(CONTENT).length], [crlf(big).length, crlf(big).length]]);
    assert.equal(watch.staged[1]!.content.toString("latin1"), crlf(big));
    assert.deepEqual(fs.readdirSync(staging), []);
    const queued = fs.readFileSync(path.join(dataDir, "queue", "messages", "ID2.eml"), "latin1");
    assert.ok(queued.endsWith("\n" + big.replace(/\r\n/g, "\n")));
  });

  test("a check without a run for this message, one whose finish throws, and a malformed field: accepted, fast path when none runs", async () => {
    const none = fakeCheck("none", accept(), { skip: true });
    await deliver(spool([none]), envelope(["u@localhost"]), [CONTENT]);
    assert.equal(none.started.length, 1);
    assert.ok(!fs.existsSync(path.join(dataDir, "spool", "staging")), "no check ran: no staging");
    const broken = fakeCheck("broken", () => Promise.reject(new Error("bug")));
    const bad = fakeCheck("bad", accept("X-Bad: 1\r\nInjected: yes\r\n", "no colon\r\n", "X-Good: 1\r\n"));
    await deliver(spool([broken, bad]), envelope(["v@localhost"], [], { id: "ID2" }), [CONTENT]);
    const [file] = files("v@localhost", "new");
    assert.match(split(file!).head, /^Return-Path: <s@remote\.test>\nX-Good: 1\nReceived: /);
  });

  test("who is checked: only the smtp listener without AUTH from outside trusted_networks", async () => {
    const c = fakeCheck("c", accept("X-Checked: 1\r\n"));
    const s = spool([c], ["192.0.2.0/24", "2001:db8::/32"]);
    const cases: [string, Partial<Envelope>][] = [
      ["submission", { source: "submission", listener: "submission", authenticated: true }],
      ["AUTH on port 25", { source: "submission", authenticated: true }],
      ["a trusted network", { peerAddress: "192.0.2.9" }],
      ["a trusted IPv6 network", { peerAddress: "2001:db8::7" }],
      ["local mail (sendmail)", { source: "local", listener: undefined }],
    ];
    for (const [i, [why, more]] of cases.entries()) {
      await deliver(s, envelope([`n${i}@localhost`], [], { peerAddress: "198.51.100.1", ...more, id: `N${i}` }), [CONTENT]);
      assert.ok(!fs.readFileSync(files(`n${i}@localhost`, "new")[0]!, "latin1").includes("X-Checked"), why);
    }
    assert.equal(c.started.length, 0);
    await deliver(s, envelope(["y@localhost"], [], { peerAddress: "127.0.0.1", id: "Y" }), [CONTENT]);
    assert.equal(c.started.length, 1, "loopback is checked unless trusted");
  });

  test("Authentication-Results claiming our host are removed from checkable mail (checks or not), kept from trusted peers", async () => {
    const forged = "Authentication-Results: MX.TEST;\r\n\tdmarc=pass\r\nAuthentication-Results: other.test; spf=fail\r\n";
    const s = spool([], ["192.0.2.0/24"]);
    await deliver(s, envelope(["u@localhost"], [], { peerAddress: "198.51.100.1" }), [forged + CONTENT]);
    await deliver(s, envelope(["t@localhost"], [], { id: "ID2" }), [forged + CONTENT]);
    const c = fakeCheck("c", accept());
    await deliver(spool([c]), envelope(["w@localhost"], [], { id: "ID3" }), [forged.slice(0, 30), forged.slice(30) + CONTENT]);
    for (const u of ["u@localhost", "w@localhost"]) {
      const text = fs.readFileSync(files(u, "new")[0]!, "latin1");
      assert.ok(!/MX\.TEST/.test(text), u);
      assert.ok(text.includes("Authentication-Results: other.test; spf=fail\n"), u);
    }
    assert.equal(Buffer.concat(c.written[0]!).toString("latin1"), "Authentication-Results: other.test; spf=fail\r\n" + CONTENT, "checks see what is stored");
    assert.ok(fs.readFileSync(files("t@localhost", "new")[0]!, "latin1").includes("Authentication-Results: MX.TEST;\n\tdmarc=pass\n"), "trusted: kept");
  });
});
