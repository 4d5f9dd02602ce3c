// Hostile SMTP clients against the real server (issue 7): clients that never read, endless junk
// commands, early talkers (smtp.greet_pause), pipelining without PIPELINING, HTTP sent to port 25,
// invalid UTF-8 and 8-bit HELO names, VRFY/EXPN on a big store, refusal logs and the open-file limit.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { RawSmtp } from "./helpers/smtp-client.js";
import { MB, flood, repeated, rssBytes } from "./helpers/hostile.js";
import { HOSTNAME, command, dataStream, deliverOne, eventually, expectReply, greeted, sleep } from "./smtp-protocol-helpers.js";

const USERS = [
  ["alice@localhost", "pw", "Alice Liddell"],
  ["bob@localhost", "pw"],
] as const;

/** Everything the server says until it closes the connection (for replies after a refusal). */
async function untilClosed(c: RawSmtp): Promise<string> {
  await c.waitClosed();
  return c.pending;
}

describe("clients that send nonstop and never read", () => {
  let server: TestServer;
  before(async () => {
    // No junk limit here: backpressure alone must bound memory.
    server = await startTestServer({ users: USERS, toml: "[limits]\nmax_junk_commands = 1000000000\nmax_errors = 1000000000\n" });
  });
  after(async () => {
    await server.stop();
  });

  test("EHLO nonstop from 4 non-reading clients for 4 s: RSS stays within 60 MB of the start; a normal client is served after", async (t) => {
    const pid = server.process.pid!;
    await deliverOne(server.smtpPort, "alice@localhost", "still alive"); // warm up: the first delivery loads what a delivery needs
    const start = rssBytes(pid);
    const r = await flood({
      port: server.smtpPort,
      pid,
      connections: 4,
      ms: 4000,
      payload: repeated("EHLO x\r\n"),
      first: { send: "EHLO x\r\n", until: /^250 HELP\r\n/m },
    });
    const grew = r.peakRss - start;
    t.diagnostic(`RSS start ${(start / MB).toFixed(1)} MB, peak ${(r.peakRss / MB).toFixed(1)} MB; clients wrote ${(r.written / MB).toFixed(1)} MB`);
    assert.ok(grew < 60 * MB, `RSS grew by ${(grew / MB).toFixed(1)} MB (start ${(start / MB).toFixed(1)} MB, clients wrote ${(r.written / MB).toFixed(1)} MB)`);
    await deliverOne(server.smtpPort, "alice@localhost", "still alive");
  });

  test("EXPN of a 5,000-member list streams every member to a client that reads", async () => {
    const members = Array.from({ length: 5000 }, (_, i) => `m${i}@remote.test`);
    const db = new Database(path.join(server.dataDir, "petrel.db"));
    const ins = db.prepare("INSERT INTO lists (list, member) VALUES (?, ?)");
    db.transaction(() => members.forEach((m) => ins.run("big@localhost", m)))();
    db.close();
    const c = await greeted(server.smtpPort);
    const r = await command(c, "EXPN big@localhost", 250, "2.1.5");
    assert.equal(r.lines.length, 5000);
    assert.equal(r.lines[4999], "2.1.5 <m4999@remote.test>");
    await command(c, "QUIT", 221, "2.0.0");
    c.close();
  });
});

describe("every command counts toward a limit", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: USERS, toml: "[limits]\nmax_junk_commands = 5\nmax_recipients = 2\n" });
  });
  after(async () => {
    await server.stop();
  });

  test("EHLO counts: the sixth EHLO gets 421 4.7.0 and the connection closes", async () => {
    const c = await RawSmtp.connect(server.smtpPort);
    await expectReply(c, 220, null);
    for (let i = 0; i < 5; i++) await command(c, "EHLO x", 250, null);
    await command(c, "EHLO x", 421, "4.7.0", /too many commands/);
    await c.waitClosed();
  });

  test("MAIL FROM does not reset the count (a MAIL/RSET loop ends)", async () => {
    const c = await greeted(server.smtpPort); // 1
    await command(c, "NOOP", 250, "2.0.0"); // 2
    await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
    await command(c, "RSET", 250, "2.0.0"); // 3
    await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
    await command(c, "RSET", 250, "2.0.0"); // 4
    await command(c, "NOOP", 250, "2.0.0"); // 5
    await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
    await command(c, "RSET", 421, "4.7.0");
    await c.waitClosed();
  });

  test("a delivered message resets the count", async () => {
    const c = await greeted(server.smtpPort);
    for (let i = 0; i < 4; i++) await command(c, "NOOP", 250, "2.0.0");
    await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<bob@localhost>", 250, "2.1.5");
    await command(c, "DATA", 354, null);
    c.write(dataStream(Buffer.from("Subject: x\r\n\r\nx\r\n")));
    await expectReply(c, 250, "2.0.0");
    for (let i = 0; i < 5; i++) await command(c, "NOOP", 250, "2.0.0");
    await command(c, "NOOP", 421, "4.7.0");
    await c.waitClosed();
  });

  test("RCPT past max_recipients (452) cannot go on forever", async () => {
    const c = await greeted(server.smtpPort); // 1
    await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<alice@localhost>", 250, "2.1.5");
    await command(c, "RCPT TO:<bob@localhost>", 250, "2.1.5");
    for (let i = 0; i < 4; i++) await command(c, "RCPT TO:<alice@localhost>", 452, "4.5.3"); // 2..5
    await command(c, "RCPT TO:<alice@localhost>", 421, "4.7.0");
    await c.waitClosed();
  });
});

describe("early talkers (smtp.greet_pause)", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: USERS, toml: "[smtp]\ngreet_pause = 1\n" });
  });
  after(async () => {
    await server.stop();
  });

  test("a patient client gets 220- at once, 220 after the pause, and a normal session", async () => {
    const t0 = Date.now();
    const c = await RawSmtp.connect(server.smtpPort);
    const r = await c.reply();
    assert.equal(r.raw, `220-${HOSTNAME} ESMTP Petrel\r\n220 ${HOSTNAME} ESMTP Petrel\r\n`);
    assert.ok(Date.now() - t0 >= 900, `the final 220 came after ${Date.now() - t0} ms`);
    await command(c, "EHLO client.test", 250, null);
    await command(c, "QUIT", 221, "2.0.0");
    c.close();
  });

  test("a client that talks before the final 220 gets 554 5.5.0 and is closed (logged)", async () => {
    const c = await RawSmtp.connect(server.smtpPort);
    c.write("EHLO spambot.test\r\n");
    assert.equal(await untilClosed(c), `220-${HOSTNAME} ESMTP Petrel\r\n554 5.5.0 Protocol error: talked before the greeting\r\n`);
    await eventually("the log line", () => server.logLines().find((l) => l.msg === "connection refused" && l.reason === "talked before the greeting"));
  });
});

describe("pipelining without PIPELINING, and HTTP sent to the SMTP port", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: USERS });
  });
  after(async () => {
    await server.stop();
  });

  test("after HELO, commands sent in one write get 554 5.5.0 and the connection closes", async () => {
    const c = await RawSmtp.connect(server.smtpPort);
    await expectReply(c, 220, null);
    await command(c, "HELO client.test", 250, null);
    c.write("MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n");
    assert.equal(await untilClosed(c), "554 5.5.0 Error: SMTP protocol synchronization\r\n");
    await eventually("the log line", () => server.logLines().find((l) => l.reason === "unauthorised pipelining"));
  });

  test("before EHLO was answered, EHLO and MAIL in one write get 554 5.5.0 (EHLO ends a group, RFC 2920)", async () => {
    const c = await RawSmtp.connect(server.smtpPort);
    await expectReply(c, 220, null);
    c.write("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\n");
    assert.equal(await untilClosed(c), "554 5.5.0 Error: SMTP protocol synchronization\r\n");
  });

  test("a HELO client that waits for each reply is served", async () => {
    const c = await RawSmtp.connect(server.smtpPort);
    await expectReply(c, 220, null);
    await command(c, "HELO client.test", 250, null);
    await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<alice@localhost>", 250, "2.1.5");
    await command(c, "DATA", 354, null);
    c.write(dataStream(Buffer.from("Subject: helo\r\n\r\nx\r\n")));
    await expectReply(c, 250, "2.0.0");
    await command(c, "QUIT", 221, "2.0.0");
  });

  for (const [name, request] of [
    ["GET with headers", "GET / HTTP/1.1\r\nHost: mx.petrel.test\r\nUser-Agent: curl/8.5\r\n\r\n"],
    ["POST", "POST /submit HTTP/1.0\r\nContent-Length: 0\r\n\r\n"],
    ["CONNECT", "CONNECT mx.petrel.test:25 HTTP/1.1\r\n\r\n"],
  ] as const) {
    test(`${name}: 221 2.7.0 and close, logged`, async () => {
      const c = await RawSmtp.connect(server.smtpPort);
      await expectReply(c, 220, null);
      c.write(request);
      assert.match(await untilClosed(c), /^221 2\.7\.0 [^\r\n]*\r\n$/);
      await eventually("the log line", () => server.logLines().find((l) => l.reason === "non-SMTP command" && String(l.line).startsWith(request.split(" ")[0]!)));
    });
  }

  test("a header line after EHLO (a client that ignored 354's absence) gets 221 2.7.0", async () => {
    const c = await greeted(server.smtpPort);
    c.write("User-Agent: Mozilla/5.0\r\n");
    assert.match(await untilClosed(c), /^221 2\.7\.0 /);
  });
});

describe("invalid UTF-8, 8-bit HELO names and echoed control characters", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: USERS });
  });
  after(async () => {
    await server.stop();
  });

  test("a command line that is not UTF-8 is 500 5.5.2; a MAIL or RCPT path 553 5.6.7", async () => {
    const c = await greeted(server.smtpPort);
    c.write(Buffer.from("NOOP caf\xe9\r\n", "latin1"));
    await expectReply(c, 500, "5.5.2");
    c.write(Buffer.from("MAIL FROM:<j\xfcrgen@remote.test> SMTPUTF8\r\n", "latin1"));
    await expectReply(c, 553, "5.6.7");
    await command(c, "MAIL FROM:<a@remote.test> SMTPUTF8", 250, "2.1.0");
    c.write(Buffer.concat([Buffer.from("RCPT TO:<"), Buffer.from([0xc3, 0x28]), Buffer.from("@localhost>\r\n")]));
    await expectReply(c, 553, "5.6.7");
    // An overlong encoding of "/" and a lone surrogate are not UTF-8 either.
    c.write(Buffer.concat([Buffer.from("RCPT TO:<a"), Buffer.from([0xc0, 0xaf]), Buffer.from("@localhost>\r\n")]));
    await expectReply(c, 553, "5.6.7");
    c.write(Buffer.concat([Buffer.from("RCPT TO:<a"), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from("@localhost>\r\n")]));
    await expectReply(c, 553, "5.6.7");
    await command(c, "QUIT", 221, "2.0.0");
  });

  test("HELO with a non-ASCII name is 501 5.5.2; an EHLO U-label reaches Received as an A-label without SMTPUTF8", async () => {
    const c = await RawSmtp.connect(server.smtpPort);
    await expectReply(c, 220, null);
    c.write(Buffer.from("HELO b\u00fccher.test\r\n", "utf8"));
    await expectReply(c, 501, "5.5.2");
    c.write(Buffer.from("EHLO b\u00fccher.test\r\n", "utf8"));
    await expectReply(c, 250, null);
    await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<bob@localhost>", 250, "2.1.5");
    await command(c, "DATA", 354, null);
    c.write(dataStream(Buffer.from("Subject: idn\r\n\r\nx\r\n")));
    await expectReply(c, 250, "2.0.0");
    await command(c, "QUIT", 221, "2.0.0");
    const files = server.mailbox("bob@localhost");
    const text = fs.readFileSync(files.at(-1)!);
    const headers = text.subarray(0, text.indexOf("Subject:"));
    assert.match(headers.toString("latin1"), /^Received: from xn--bcher-kva\.test /m);
    assert.ok(headers.every((b) => b < 0x80), `raw 8-bit in the trace headers: ${JSON.stringify(headers.toString("latin1"))}`);
  });

  test("control characters and 8-bit text are never echoed raw in replies", async () => {
    const c = await greeted(server.smtpPort);
    const r = await command(c, "HELP a\tb\u00e9", 504, "5.5.1");
    assert.match(r.raw, /^504 5\.5\.1 HELP topic not known: A\?B\?\r\n$/);
    const m = await command(c, "MAIL FROM:<a@remote.test> X-\u00e9=1", 501, "5.5.4");
    assert.ok([...m.raw].every((ch) => ch >= " " && ch <= "~" || ch === "\r" || ch === "\n"), JSON.stringify(m.raw));
    await command(c, "QUIT", 221, "2.0.0");
  });
});

/** Adds users u0..u<n-1>@localhost ("User <i>") straight into the store: the CLI hashes each password. */
function addUsers(server: TestServer, n: number): void {
  const db = new Database(path.join(server.dataDir, "petrel.db"));
  const ins = db.prepare("INSERT INTO users (address, local, domain, name, password, apop_secret, created) VALUES (?, ?, 'localhost', ?, 'x', NULL, 0)");
  db.transaction(() => {
    for (let i = 0; i < n; i++) ins.run(`u${i}@localhost`, `u${i}`, `User ${i}`);
  })();
  db.close();
}

describe("VRFY and EXPN on a store of 5,000 users (smtp.vrfy_search = false, the default)", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: USERS });
    addUsers(server, 5000);
  });
  after(async () => {
    await server.stop();
  });

  test("VRFY u (a 6-byte command) is a short 550, not a 144 KB list", async () => {
    const c = await greeted(server.smtpPort);
    const r = await command(c, "VRFY u", 550, "5.1.1");
    assert.ok(r.raw.length < 200, `${r.raw.length} bytes`);
    await command(c, "QUIT", 221, "2.0.0");
  });

  test("VRFY by exact local part or full address still answers", async () => {
    const c = await greeted(server.smtpPort);
    await command(c, "VRFY u42", 250, "2.1.5", /^User 42 <u42@localhost>$/);
    await command(c, "VRFY u4999@localhost", 250, "2.1.5", /^User 4999 <u4999@localhost>$/);
    await command(c, "VRFY Liddell", 550, "5.1.1"); // a display name is a partial search: off
    await command(c, "QUIT", 221, "2.0.0");
  });
});

describe("VRFY with smtp.vrfy_search = true: an ambiguous answer is capped", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: USERS, toml: "[smtp]\nvrfy_search = true\n" });
    addUsers(server, 7);
  });
  after(async () => {
    await server.stop();
  });

  test("VRFY u names 5 candidates and how many more", async () => {
    const c = await greeted(server.smtpPort);
    const r = await command(c, "VRFY u", 553, "5.1.4");
    assert.equal(r.lines.length, 7, r.raw);
    assert.equal(r.lines[6], "5.1.4 and 2 more");
    await command(c, "QUIT", 221, "2.0.0");
  });
});

describe("refusals and endings in the log", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: USERS, toml: "[limits]\nmax_message_size = 1000\nshutdown_grace = 1\n" });
  });
  after(async () => {
    await server.stop(); // already stopped by the last test unless it failed early
  });

  test("MAIL refused for SIZE (552), 8-bit address (553) or options (555) is logged at info with the reason", async () => {
    const c = await greeted(server.smtpPort);
    await command(c, "MAIL FROM:<a@remote.test> SIZE=5000", 552, "5.3.4");
    c.write(Buffer.from("MAIL FROM:<j\u00fcrgen@remote.test>\r\n", "utf8"));
    await expectReply(c, 553, "5.6.7");
    await command(c, "MAIL FROM:<a@remote.test> XFORWARD=1", 555, "5.5.4");
    await command(c, "QUIT", 221, "2.0.0");
    for (const code of ["552 5.3.4", "553 5.6.7", "555 5.5.4"])
      await eventually(`the ${code} log line`, () => server.logLines().find((l) => l.msg === "sender refused" && l.level === 30 && String(l.reason).startsWith(code)));
  });

  test("QUIT after refused recipients logs 'aborted: quit'", async () => {
    const c = await greeted(server.smtpPort);
    await command(c, "MAIL FROM:<quitter@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<nobody@localhost>", 550, "5.1.1");
    await command(c, "QUIT", 221, "2.0.0");
    const line = await eventually("the transaction line", () => server.logLines().find((l) => l.msg === "transaction" && l.from === "quitter@remote.test"));
    assert.equal(line.result, "aborted: quit");
  });

  test("a transaction cut at the end of the shutdown grace period logs 'aborted: cut at shutdown'", async () => {
    const c = await greeted(server.smtpPort);
    await command(c, "MAIL FROM:<slow@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<alice@localhost>", 250, "2.1.5");
    const logs = server.logLines;
    await server.stop();
    const line = logs().find((l) => l.msg === "transaction" && l.from === "slow@remote.test");
    assert.equal(line?.result, "aborted: cut at shutdown");
    c.close();
  });
});

describe("the open-file limit (ulimit -n 64)", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: USERS, openFileLimit: 64 });
  });
  after(async () => {
    await server.stop();
  });

  test("more connections than descriptors: logged, the server stays up and serves once they close", async () => {
    const clients: RawSmtp[] = [];
    for (let i = 0; i < 90; i++) clients.push(await RawSmtp.connect(server.smtpPort));
    const line = await eventually("the open-file warning", () => server.logLines().find((l) => /open-file limit/.test(String(l.msg))));
    assert.equal(line.level, 40);
    assert.equal(server.process.exitCode, null);
    // Those turned away by Petrel were told so (once the table is full, the kernel's accept fails
    // and libuv closes the connection without a word: that is what the reserve is there to avoid).
    const refused = await eventually("a 421 to a refused client", () => clients.filter((c) => c.closed && /^421 /.test(c.pending)).length);
    assert.ok(refused > 0);
    for (const c of clients) c.close();
    await sleep(300);
    await deliverOne(server.smtpPort, "alice@localhost", "still alive");
  });
});
