// End-to-end tests of BDAT (RFC 3030 CHUNKING) against the real `petrel serve`: chunk replies, the
// content stored byte for byte with no dot processing, chunks split or pipelined in any way, BDAT
// 0 LAST, and the refusals (before MAIL, no valid recipient with its bytes still consumed, DATA
// inside a BDAT transfer, RSET aborting it).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { RawSmtp } from "./helpers/smtp-client.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { assertDelivered, command, eventually, expectReply, greeted, queuedId, readsId, sleep, tmpFiles, Sessions } from "./smtp-protocol-helpers.js";

describe("BDAT (RFC 3030)", () => {
  let server: TestServer;
  const sessions = new Sessions(() => server.smtpPort);
  const session = () => sessions.greeted();
  const only = (address: string, id: string) => {
    const files = server.mailbox(address).filter((f) => readsId(f, id));
    assert.equal(files.length, 1, `one copy of ${id} for ${address}`);
    return files[0]!;
  };
  const begin = async (c: RawSmtp, from: string, to: string) => {
    await command(c, `MAIL FROM:<${from}>`, 250, "2.1.0");
    await command(c, `RCPT TO:<${to}>`, 250, "2.1.5");
  };
  const bdat = (bytes: Buffer | string, last = false) => {
    const b = typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes;
    return Buffer.concat([Buffer.from(`BDAT ${b.length}${last ? " LAST" : ""}\r\n`), b]);
  };

  before(async () => {
    server = await startTestServer({ users: [["alice@localhost", "pw-alice"], ["bob@localhost", "pw-bob"]] });
  });
  after(async () => {
    sessions.closeAll();
    assert.equal(await server.stop(), 0);
  });

  test("BDAT n gets 250 2.0.0, BDAT n LAST gets 250 2.0.0 Ok: queued as <id>; dots and lines stay verbatim", async () => {
    const c = await session();
    await begin(c, "chunky@remote.test", "alice@localhost");
    const first = Buffer.from("Subject: c\r\n"); // 12 bytes
    c.write("BDAT 12\r\n");
    c.write(first);
    await expectReply(c, 250, "2.0.0");
    const second = Buffer.from("\r\n.\r\n..\r\n.x\r\n...\r\n.\r\nend\r\n");
    c.write(`BDAT ${second.length} LAST\r\n`);
    c.write(second);
    const id = queuedId(await c.reply());
    assertDelivered(only("alice@localhost", id), { sender: "chunky@remote.test", rcpt: "alice@localhost", id, content: Buffer.concat([first, second]) });
  });

  test("the command and its bytes in one write, several chunks pipelined, then QUIT", async () => {
    const c = await session();
    await begin(c, "pipe@remote.test", "bob@localhost");
    const parts = ["Subject: pipelined chunks\r\n", "\r\nBDAT 5\r\nnot a command\r\n", "QUIT\r\n", "tail"];
    c.write(Buffer.concat([bdat(parts[0]!), bdat(parts[1]!), bdat(parts[2]!), bdat(parts[3]!, true), Buffer.from("QUIT\r\n")]));
    for (const p of parts.slice(0, 3)) await expectReply(c, 250, "2.0.0", new RegExp(`^${p.length} octets`));
    const id = queuedId(await c.reply());
    await expectReply(c, 221, "2.0.0");
    await c.waitClosed();
    // Content need not end with CRLF under BDAT; a bare "tail" is stored as is.
    assertDelivered(only("bob@localhost", id), { sender: "pipe@remote.test", rcpt: "bob@localhost", id, content: Buffer.from(parts.join("")) });
  });

  test("a chunk split over many writes, and a chunk whose bytes come much later than the command", async () => {
    const c = await session();
    await begin(c, "split@remote.test", "alice@localhost");
    const content = Buffer.from("Subject: split\r\n\r\n" + "0123456789".repeat(300) + "\r\n", "latin1");
    c.write(`BDAT ${content.length - 100}\r\n`);
    for (let pos = 0; pos < content.length - 100; pos += 333) {
      await sleep(5);
      c.write(content.subarray(pos, Math.min(pos + 333, content.length - 100)));
    }
    await expectReply(c, 250, "2.0.0");
    c.write("BDAT 100 LAST\r\n");
    await sleep(150);
    assert.equal(c.pending, "", "no reply before the chunk's bytes arrive");
    c.write(content.subarray(content.length - 100, content.length - 50));
    await sleep(50);
    c.write(content.subarray(content.length - 50));
    const id = queuedId(await c.reply());
    assertDelivered(only("alice@localhost", id), { sender: "split@remote.test", rcpt: "alice@localhost", id, content });
  });

  test("8-bit and binary bytes and bare CR are stored unchanged, CRLF as LF; ,W= counts every LF as CRLF", async () => {
    const c = await session();
    await begin(c, "bin@remote.test", "bob@localhost");
    const content = Buffer.concat([Buffer.from("Subject: bin\r\n\r\n"), Buffer.from([0x00, 0xe9, 0xff, 0x0a, 0x0d, 0x2e, 0x0a, 0x2e, 0x0d, 0x0a])]);
    c.write(bdat(content, true));
    const id = queuedId(await c.reply());
    const file = only("bob@localhost", id);
    assertDelivered(file, { sender: "bin@remote.test", rcpt: "bob@localhost", id, content });
    const name = path.basename(file);
    const s = Number(/,S=(\d+)/.exec(name)![1]);
    // Stored: 7 header lines + "\0\xe9\xff\n\r.\n.\n" (3): every LF is one more octet on the wire.
    assert.equal(fs.readFileSync(file).filter((b) => b === 10).length, 10);
    assert.equal(Number(/,W=(\d+)/.exec(name)![1]), s + 10, name);
  });

  test("BDAT 0 LAST ends a message; BDAT 0 LAST alone is an empty message", async () => {
    const c = await session();
    await begin(c, "zero@remote.test", "alice@localhost");
    const content = Buffer.from("Subject: zero\r\n\r\nbody\r\n");
    c.write(bdat(content));
    await expectReply(c, 250, "2.0.0");
    const done = queuedId(await command(c, "BDAT 0 LAST", 250, "2.0.0"));
    assertDelivered(only("alice@localhost", done), { sender: "zero@remote.test", rcpt: "alice@localhost", id: done, content });

    await begin(c, "empty@remote.test", "bob@localhost");
    c.write("BDAT 0 LAST\r\n");
    const id = queuedId(await c.reply());
    assertDelivered(only("bob@localhost", id), { sender: "empty@remote.test", rcpt: "bob@localhost", id, content: Buffer.alloc(0) });
  });

  test("BDAT before MAIL gets 503 5.5.1; after the message is done too", async () => {
    const c = await session();
    await command(c, "BDAT 0 LAST", 503, "5.5.1");
    await begin(c, "done@remote.test", "alice@localhost");
    c.write(bdat("Subject: done\r\n\r\nx\r\n", true));
    queuedId(await c.reply());
    await command(c, "BDAT 0 LAST", 503, "5.5.1");
    await command(c, "NOOP", 250, "2.0.0");
  });

  test("BDAT with no valid recipient gets 554 5.5.1 and its bytes are consumed, not parsed as commands", async () => {
    const c = await session();
    await command(c, "MAIL FROM:<norcpt@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<nobody@localhost>", 550, "5.1.1");
    c.write(bdat("RSET\r\nQUIT\r\n", true));
    await expectReply(c, 554, "5.5.1");
    await command(c, "NOOP", 250, "2.0.0");
    // The transaction is still open; a valid recipient then BDAT works.
    await command(c, "RCPT TO:<bob@localhost>", 250, "2.1.5");
    const content = Buffer.from("Subject: after refusal\r\n\r\nok\r\n");
    c.write(bdat(content, true));
    const id = queuedId(await c.reply());
    assertDelivered(only("bob@localhost", id), { sender: "norcpt@remote.test", rcpt: "bob@localhost", id, content });
  });

  test("DATA, MAIL and RCPT during a BDAT transfer get 503 5.5.1; the transfer can still finish", async () => {
    const c = await session();
    await begin(c, "mixed@remote.test", "alice@localhost");
    const a = Buffer.from("Subject: mixed\r\n");
    c.write(bdat(a));
    await expectReply(c, 250, "2.0.0");
    await command(c, "DATA", 503, "5.5.1");
    await command(c, "MAIL FROM:<other@remote.test>", 503, "5.5.1");
    await command(c, "RCPT TO:<bob@localhost>", 503, "5.5.1");
    const b = Buffer.from("\r\nstill one message\r\n");
    c.write(bdat(b, true));
    const id = queuedId(await c.reply());
    assertDelivered(only("alice@localhost", id), { sender: "mixed@remote.test", rcpt: "alice@localhost", id, content: Buffer.concat([a, b]) });
    assert.equal(server.mailbox("bob@localhost").filter((f) => readsId(f, id)).length, 0);
  });

  test("RSET during a BDAT transfer aborts it: nothing delivered, no temporary file", async () => {
    const before = { alice: server.mailbox("alice@localhost").length };
    const c = await session();
    await begin(c, "aborted@remote.test", "alice@localhost");
    c.write(bdat("Subject: aborted\r\n\r\nhalf a message\r\n"));
    await expectReply(c, 250, "2.0.0");
    await command(c, "RSET", 250, "2.0.0");
    assert.equal(server.mailbox("alice@localhost").length, before.alice);
    assert.deepEqual(tmpFiles(server.dataDir, "alice@localhost"), []);
    // Refused after RSET, but its chunk is still read (RFC 3030 §2), not taken for commands.
    c.write("BDAT 6 LAST\r\nNOOP\r\n");
    await expectReply(c, 503, "5.5.1");
    await command(c, "MAIL FROM:<again@remote.test>", 250, "2.1.0");
  });

  test("a client that disconnects in the middle of BDAT leaves nothing behind", async () => {
    const before = server.mailbox("bob@localhost").length;
    const c = await greeted(server.smtpPort);
    await begin(c, "gone@remote.test", "bob@localhost");
    c.write("BDAT 1000 LAST\r\nonly a few bytes");
    await sleep(100);
    c.close();
    await eventually("the aborted transaction log line", () =>
      server.logLines().some((l) => l.msg === "transaction" && l.from === "gone@remote.test" && /^aborted/.test(String(l.result))),
    );
    assert.equal(server.mailbox("bob@localhost").length, before);
    assert.deepEqual(tmpFiles(server.dataDir, "bob@localhost"), []);
  });

  test("bad BDAT syntax gets 501 5.5.4", async () => {
    const c = await session();
    await begin(c, "syntax@remote.test", "alice@localhost");
    await command(c, "BDAT", 501, "5.5.4");
    await command(c, "BDAT abc", 501, "5.5.4");
    await command(c, "BDAT -1 LAST", 501, "5.5.4");
    await command(c, "BDAT 0 FIRST", 501, "5.5.4");
  });

  test("the transaction log line counts every chunk's bytes", async () => {
    const c = await session();
    await begin(c, "logged@remote.test", "bob@localhost");
    c.write(Buffer.concat([bdat("Subject: log\r\n"), bdat("\r\n12345\r\n", true)]));
    await expectReply(c, 250, "2.0.0");
    const id = queuedId(await c.reply());
    const line = await eventually("the log line", () => server.logLines().find((l) => l.msg === "transaction" && l.id === id));
    assert.equal(line.size, "Subject: log\r\n\r\n12345\r\n".length);
    assert.equal(line.from, "logged@remote.test");
    assert.match(String(line.result), /^250 2\.0\.0 Ok: queued as /);
  });
});
