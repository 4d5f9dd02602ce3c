// End-to-end tests of the SMTP server's limits and its end of life: max_errors (421 4.7.0 and close),
// max_recipients (452 4.5.3, RFC 5321 §4.5.3.1.10), the idle command timeout (421 4.4.2, RFC 5321
// §4.5.3.2.7), and graceful shutdown on SIGTERM (idle sessions get 421 4.3.2, a DATA in flight finishes).
// Also data_timeout (silence inside DATA) and the per-listener connection limit.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { RawSmtp } from "./helpers/smtp-client.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { assertDelivered, command, drainUntilClosed, expectReply, greeted, queuedId, readsId, sleep, Sessions } from "./smtp-protocol-helpers.js";

const MESSAGE = Buffer.from("Subject: limits\r\n\r\nbody\r\n");

describe("max_errors = 5 and max_recipients = 3", () => {
  let server: TestServer;
  const sessions = new Sessions(() => server.smtpPort);
  const session = () => sessions.greeted();

  before(async () => {
    server = await startTestServer({
      users: ["alice", "bob", "carol", "dave", "erin"].map((u) => [`${u}@localhost`, "pw"] as const),
      toml: "[limits]\nmax_errors = 5\nmax_recipients = 3\n",
    });
  });
  after(async () => {
    sessions.closeAll();
    assert.equal(await server.stop(), 0);
  });

  test("four errors are tolerated; the fifth gets its reply, then 421 4.7.0, and the connection closes", async () => {
    const c = await session();
    await command(c, "FOO", 500, "5.5.2");
    await command(c, "RCPT TO:<alice@localhost>", 503, "5.5.1");
    await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<nobody@localhost>", 550, "5.1.1");
    await command(c, "MAIL FROM:bad", 503, "5.5.1");
    await command(c, "NOOP", 250, "2.0.0");
    c.write("RCPT TO:<x@elsewhere.test>\r\n");
    await expectReply(c, 554, "5.7.1");
    await expectReply(c, 421, "4.7.0");
    await c.waitClosed();
    assert.equal(c.pending, "");
  });

  test("recipients past max_recipients get 452 4.5.3 (not counted as errors); the first three are delivered", async () => {
    const c = await session();
    await command(c, "MAIL FROM:<many@remote.test>", 250, "2.1.0");
    for (const u of ["alice", "bob", "carol"]) await command(c, `RCPT TO:<${u}@localhost>`, 250, "2.1.5");
    // More than max_errors of them: a 452 is not a client error.
    for (let i = 0; i < 6; i++) await command(c, `RCPT TO:<${i % 2 ? "dave" : "erin"}@localhost>`, 452, "4.5.3");
    await command(c, "DATA", 354, null);
    c.write(Buffer.concat([MESSAGE, Buffer.from(".\r\n")]));
    const id = queuedId(await c.reply());
    for (const u of ["alice", "bob", "carol"]) {
      const files = server.mailbox(`${u}@localhost`).filter((f) => readsId(f, id));
      assert.equal(files.length, 1, u);
      assertDelivered(files[0]!, { sender: "many@remote.test", rcpt: `${u}@localhost`, id, content: MESSAGE });
    }
    assert.deepEqual(server.mailbox("dave@localhost"), []);
    assert.deepEqual(server.mailbox("erin@localhost"), []);
    // The client sends the rest in a new transaction, as RFC 5321 §4.5.3.1.10 expects.
    await command(c, "MAIL FROM:<many@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<dave@localhost>", 250, "2.1.5");
    await command(c, "RCPT TO:<erin@localhost>", 250, "2.1.5");
  });
});

describe("command_timeout = 1", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: [["alice@localhost", "pw"]], toml: "[limits]\ncommand_timeout = 1\n" });
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  test("an idle client gets 421 4.4.2 and is disconnected", async () => {
    const c = await greeted(server.smtpPort);
    const start = Date.now();
    await expectReply(c, 421, "4.4.2", undefined, 4000);
    const waited = Date.now() - start;
    assert.ok(waited >= 800 && waited < 3500, `timed out after ${waited} ms`);
    await c.waitClosed();
  });

  test("idle inside a transaction: 421 4.4.2, the transaction is dropped", async () => {
    const c = await greeted(server.smtpPort);
    await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<alice@localhost>", 250, "2.1.5");
    assert.deepEqual(await drainUntilClosed(c, 4000).then((rs) => rs.map((r) => `${r.code} ${r.lines[0]!.slice(0, 5)}`)), ["421 4.4.2"]);
    assert.deepEqual(server.mailbox("alice@localhost"), []);
  });

  test("a client that keeps talking is not timed out", async () => {
    const c = await greeted(server.smtpPort);
    for (let i = 0; i < 4; i++) {
      await sleep(500);
      await command(c, "NOOP", 250, "2.0.0");
    }
    await command(c, "QUIT", 221, "2.0.0");
  });
});

describe("data_timeout = 1 and max_connections = 2", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: [["alice@localhost", "pw"]], toml: "[limits]\ndata_timeout = 1\nmax_connections = 2\n" });
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  test("silence inside DATA: 421 4.4.2, nothing delivered, nothing left in tmp/", async () => {
    const c = await greeted(server.smtpPort);
    await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<alice@localhost>", 250, "2.1.5");
    await command(c, "DATA", 354, null);
    c.write("Subject: half\r\n\r\nhalf a message");
    assert.deepEqual(await drainUntilClosed(c, 4000).then((rs) => rs.map((r) => `${r.code} ${r.lines[0]!.slice(0, 5)}`)), ["421 4.4.2"]);
    assert.deepEqual(server.mailbox("alice@localhost"), []);
    const tmp = path.join(server.dataDir, "mailboxes", "localhost", "alice", "tmp");
    assert.deepEqual(fs.existsSync(tmp) ? fs.readdirSync(tmp) : [], []);
  });

  test("a third connection gets 421 4.7.0 and is closed; a slot frees when one leaves", async () => {
    const a = await greeted(server.smtpPort);
    const b = await greeted(server.smtpPort);
    const third = await RawSmtp.connect(server.smtpPort);
    await expectReply(third, 421, "4.7.0");
    await third.waitClosed();
    await command(a, "QUIT", 221, "2.0.0");
    await a.waitClosed();
    await eventuallyGreeted(server.smtpPort);
    b.close();
  });
});

/** Connects until a greeting arrives (the server notices a closed session a moment later). */
async function eventuallyGreeted(port: number): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const c = await RawSmtp.connect(port);
    const r = await c.reply();
    c.close();
    if (r.code === 220) return;
    await sleep(50);
  }
  assert.fail("no greeting after a connection slot was freed");
}

describe("graceful shutdown (SIGTERM, shutdown_grace = 5)", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: [["alice@localhost", "pw"]], toml: "[limits]\nshutdown_grace = 5\n" });
  });
  after(async () => {
    await server.stop();
  });

  test("the idle client gets 421 4.3.2; the DATA in flight is delivered, then 421; exit code 0", async () => {
    const idle = await greeted(server.smtpPort);
    const busy = await greeted(server.smtpPort);
    await command(busy, "MAIL FROM:<late@remote.test>", 250, "2.1.0");
    await command(busy, "RCPT TO:<alice@localhost>", 250, "2.1.5");
    await command(busy, "DATA", 354, null);
    const content = Buffer.from("Subject: in flight\r\n\r\n" + "line of the message body\r\n".repeat(200));
    const half = Math.floor(content.length / 2);
    busy.write(content.subarray(0, half));
    await sleep(100);

    const exit = new Promise<number | null>((resolve) => server.process.once("exit", (code) => resolve(code)));
    server.process.kill("SIGTERM");

    await expectReply(idle, 421, "4.3.2");
    await idle.waitClosed();
    // No new connections once shutting down.
    await assert.rejects(RawSmtp.connect(server.smtpPort));

    await sleep(200);
    busy.write(Buffer.concat([content.subarray(half), Buffer.from(".\r\n")]));
    const id = queuedId(await busy.reply());
    const files = server.mailbox("alice@localhost");
    assert.equal(files.length, 1);
    assertDelivered(files[0]!, { sender: "late@remote.test", rcpt: "alice@localhost", id, content });
    busy.write("NOOP\r\n");
    await expectReply(busy, 421, "4.3.2");
    await busy.waitClosed();
    assert.equal(await exit, 0);
  });
});
