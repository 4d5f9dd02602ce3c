// End-to-end tests of the SMTP command dialogue (RFC 5321 §4.1-4.3, RFC 2920 pipelining, RFC 3463
// enhanced codes) against the real `petrel serve` on loopback: greeting and EHLO, command sequence,
// syntax errors, MAIL parameters, recipient decisions (never an open relay), long lines, the log line.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { RawSmtp, type RawReply } from "./helpers/smtp-client.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import {
  HELO,
  HOSTNAME,
  assertDelivered,
  command,
  dataStream,
  eventually,
  expectReply,
  greeted,
  hasEnhancedCode,
  queuedId,
  readsId,
  sendMessage,
} from "./smtp-protocol-helpers.js";

const MESSAGE = Buffer.from("Subject: protocol test\r\n\r\nHello.\r\n");

describe("SMTP dialogue", () => {
  let server: TestServer;
  let port: number;
  const open: RawSmtp[] = [];

  /** A connection closed in `after` even when the test fails half-way. */
  async function connect(): Promise<RawSmtp> {
    const c = await RawSmtp.connect(port);
    open.push(c);
    return c;
  }
  async function session(helo = HELO): Promise<RawSmtp> {
    const c = await greeted(port, helo);
    open.push(c);
    return c;
  }

  before(async () => {
    server = await startTestServer({
      users: [
        ["alice@localhost", "pw-alice", "Alice"],
        ["bob@localhost", "pw-bob"],
        ["carol@example.test", "pw-carol"],
      ],
    });
    port = server.smtpPort;
    const r = server.petrel(["alias", "add", "postmaster@localhost", "alice@localhost"]);
    assert.equal(r.status, 0, r.stderr);
  });

  after(async () => {
    for (const c of open) c.close();
    assert.equal(await server.stop(), 0);
  });

  describe("greeting and hello", () => {
    test("greeting is 220 <hostname> ESMTP Petrel", async () => {
      const c = await connect();
      const r = await c.reply();
      assert.equal(r.raw, `220 ${HOSTNAME} ESMTP Petrel\r\n`);
    });

    test("EHLO names the client and advertises exactly the supported extensions", async () => {
      const c = await connect();
      await expectReply(c, 220, null);
      const r = await command(c, "EHLO client.example", 250, null);
      assert.equal(r.lines[0], `${HOSTNAME} Hello client.example [127.0.0.1]`);
      assert.deepEqual(
        r.lines.slice(1).sort(),
        ["PIPELINING", `SIZE ${10 * 1024 * 1024}`, "STARTTLS", "8BITMIME", "DSN", "ETRN", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING", "HELP"].sort(),
      );
      // Multi-line form: "250-" on every line but the last (RFC 5321 §4.2.1).
      const raw = r.raw.split("\r\n").filter(Boolean);
      assert.ok(raw.slice(0, -1).every((l) => l.startsWith("250-")) && raw.at(-1)!.startsWith("250 "), r.raw);
    });

    test("HELO gets 250 <hostname>, and mail still works after it", async () => {
      const c = await connect();
      await expectReply(c, 220, null);
      const r = await command(c, "HELO old.client", 250, null);
      assert.equal(r.raw, `250 ${HOSTNAME}\r\n`);
      const id = await sendMessage(c, "sender@remote.test", ["bob@localhost"], MESSAGE);
      const file = server.mailbox("bob@localhost").find((f) => readsId(f, id));
      assert.ok(file, "delivered to bob");
      assertDelivered(file, { sender: "sender@remote.test", rcpt: "bob@localhost", id, content: MESSAGE, helo: "old.client", protocol: "SMTP" });
    });

    test("EHLO and HELO without a name get 501 5.5.4", async () => {
      const c = await connect();
      await expectReply(c, 220, null);
      await command(c, "EHLO", 501, "5.5.4");
      await command(c, "HELO", 501, "5.5.4");
      await command(c, "EHLO ", 501, "5.5.4");
      await command(c, "EHLO good.name", 250, null);
    });

    test("a second EHLO resets the transaction", async () => {
      const c = await session();
      await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
      await command(c, "EHLO again.test", 250, null);
      await command(c, "RCPT TO:<bob@localhost>", 503, "5.5.1");
      await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
    });
  });

  describe("command sequence (RFC 5321 §4.1.4)", () => {
    test("MAIL, RCPT, DATA before EHLO get 503 5.5.1", async () => {
      const c = await connect();
      await expectReply(c, 220, null);
      await command(c, "MAIL FROM:<a@remote.test>", 503, "5.5.1");
      await command(c, "RCPT TO:<bob@localhost>", 503, "5.5.1");
      await command(c, "DATA", 503, "5.5.1");
    });

    test("RCPT and DATA before MAIL get 503 5.5.1", async () => {
      const c = await session();
      await command(c, "RCPT TO:<bob@localhost>", 503, "5.5.1");
      await command(c, "DATA", 503, "5.5.1");
    });

    test("DATA with no accepted recipient gets 554 5.5.1", async () => {
      const c = await session();
      await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
      await command(c, "DATA", 554, "5.5.1");
      await command(c, "RCPT TO:<nobody@localhost>", 550, "5.1.1");
      await command(c, "DATA", 554, "5.5.1");
      // The transaction is still open: a good recipient then DATA works.
      await command(c, "RCPT TO:<bob@localhost>", 250, "2.1.5");
      await command(c, "DATA", 354, null);
      c.write(dataStream(MESSAGE));
      await expectReply(c, 250, "2.0.0", /^Ok: queued as /);
    });

    test("nested MAIL gets 503 5.5.1", async () => {
      const c = await session();
      await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
      await command(c, "MAIL FROM:<b@remote.test>", 503, "5.5.1");
      await command(c, "RCPT TO:<bob@localhost>", 250, "2.1.5");
      await command(c, "MAIL FROM:<b@remote.test>", 503, "5.5.1");
    });

    test("RSET ends the transaction; NOOP and RSET get 250 2.0.0", async () => {
      const c = await session();
      await command(c, "NOOP", 250, "2.0.0");
      await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
      await command(c, "RCPT TO:<bob@localhost>", 250, "2.1.5");
      await command(c, "RSET", 250, "2.0.0");
      await command(c, "DATA", 503, "5.5.1");
      await command(c, "RCPT TO:<bob@localhost>", 503, "5.5.1");
      await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
      await command(c, "NOOP ignored argument", 250, "2.0.0");
      await command(c, "rset", 250, "2.0.0");
    });

    test("QUIT gets 221 2.0.0 and the server closes the connection", async () => {
      const c = await session();
      await command(c, "QUIT", 221, "2.0.0");
      await c.waitClosed();
      assert.equal(c.pending, "");
    });

    test("verbs are case-insensitive", async () => {
      const c = await connect();
      await expectReply(c, 220, null);
      await command(c, "ehlo lower.test", 250, null);
      await command(c, "mail from:<a@remote.test>", 250, "2.1.0");
      await command(c, "rcpt to:<bob@localhost>", 250, "2.1.5");
      await command(c, "Rset", 250, "2.0.0");
    });
  });

  describe("errors and unimplemented commands", () => {
    test("unknown verb gets 500 5.5.2; an empty line too", async () => {
      const c = await session();
      await command(c, "FOO bar", 500, "5.5.2");
      await command(c, "", 500, "5.5.2");
      await command(c, "NOOP", 250, "2.0.0");
    });

    test("TURN, SEND, SOML and SAML get 502 5.5.1", async () => {
      const c = await session();
      for (const verb of ["TURN", "SEND FROM:<a@b.test>", "SOML FROM:<a@b.test>", "SAML FROM:<a@b.test>"]) await command(c, verb, 502, "5.5.1");
    });

    test("HELP gets a multi-line 214", async () => {
      const c = await session();
      const r = await command(c, "HELP", 214, "2.0.0");
      assert.ok(r.lines.length > 1, r.raw);
      const raw = r.raw.split("\r\n").filter(Boolean);
      assert.ok(raw.slice(0, -1).every((l) => l.startsWith("214-")) && raw.at(-1)!.startsWith("214 "), r.raw);
      await command(c, "HELP DATA", 214, "2.0.0");
    });

    test("a 512-octet command line (CRLF included) is accepted, 513 octets get 500 5.5.2, and the session goes on", async () => {
      const c = await session();
      const noop = (octets: number) => "NOOP " + "x".repeat(octets - "NOOP ".length - 2);
      await command(c, noop(512), 250, "2.0.0");
      await command(c, noop(513), 500, "5.5.2");
      await command(c, noop(600), 500, "5.5.2");
      await command(c, "NOOP", 250, "2.0.0");
      await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
    });

    test("a 512-octet line whose LF arrives in a later packet is still accepted", async () => {
      const c = await session();
      const line = "NOOP " + "y".repeat(512 - 5 - 2);
      c.write(line + "\r");
      await new Promise((r) => setTimeout(r, 100));
      c.write("\n");
      await expectReply(c, 250, "2.0.0");
    });

    test("a 100 KB line without LF for a while is discarded whole: one 500 5.5.2, then the next command works", async () => {
      const c = await session();
      c.write("MAIL FROM:<" + "z".repeat(50_000));
      await new Promise((r) => setTimeout(r, 100));
      c.write("z".repeat(50_000) + "@remote.test>\r\nNOOP\r\n");
      await expectReply(c, 500, "5.5.2");
      await expectReply(c, 250, "2.0.0");
      await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
    });

    test("every reply but the greeting, EHLO/HELO 250 and 354 carries an enhanced status code", async () => {
      const c = await connect();
      const replies: [string, RawReply][] = [];
      const send = async (line: string) => {
        c.write(line + "\r\n");
        replies.push([line, await c.reply()]);
      };
      await c.reply();
      for (const line of [
        "MAIL FROM:<a@remote.test>",
        "EHLO",
        "EHLO client.test",
        "HELP",
        "NOOP",
        "FOO",
        "TURN",
        "RCPT TO:<bob@localhost>",
        "DATA",
        "MAIL FROM:foo",
        "MAIL FROM:<a@remote.test> SIZE=99999999999",
        "MAIL FROM:<a@remote.test> FOO=1",
        "MAIL FROM:<a@remote.test>",
        "MAIL FROM:<a@remote.test>",
        "RCPT TO:<>",
        "RCPT TO:<nobody@localhost>",
        "RCPT TO:<x@elsewhere.test>",
        "DATA",
        "RCPT TO:<bob@localhost>",
        "VRFY bob@localhost",
        "RSET",
        "QUIT",
      ]) {
        await send(line);
      }
      const exempt = (line: string, r: RawReply) => r.code === 250 && /^EHLO /.test(line);
      const missing = replies.filter(([line, r]) => !exempt(line, r) && !hasEnhancedCode(r)).map(([l, r]) => `${l} -> ${r.raw}`);
      assert.deepEqual(missing, []);
      assert.equal(replies.at(-1)![1].code, 221);
    });
  });

  describe("MAIL FROM (RFC 5321 §4.1.1.2, RFC 1870, RFC 6152, RFC 6531)", () => {
    test("bad syntax gets 501", async () => {
      const c = await session();
      for (const line of ["MAIL FROM:foo", "MAIL TO:<a@remote.test>", "MAIL FROM", "MAIL FROM:<a@remote.test", "MAIL FROM:<a@remote.test>junk", "MAIL"]) {
        const r = await command(c, line, 501, null);
        assert.ok(hasEnhancedCode(r), r.raw);
      }
      await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
    });

    test("null reverse-path <> is accepted and delivered with Return-Path: <>", async () => {
      const c = await session();
      const id = await sendMessage(c, "", ["bob@localhost"], MESSAGE);
      const file = server.mailbox("bob@localhost").find((f) => readsId(f, id));
      assert.ok(file);
      assertDelivered(file, { sender: "", rcpt: "bob@localhost", id, content: MESSAGE });
    });

    test("a space after the colon is tolerated", async () => {
      const c = await session();
      await command(c, "MAIL FROM: <a@remote.test>", 250, "2.1.0");
      await command(c, "RCPT TO: <bob@localhost>", 250, "2.1.5");
    });

    test("SIZE over the maximum gets 552 5.3.4; bad SIZE 501; SIZE within the limit 250", async () => {
      const c = await session();
      await command(c, `MAIL FROM:<a@remote.test> SIZE=${10 * 1024 * 1024 + 1}`, 552, "5.3.4");
      await command(c, "MAIL FROM:<a@remote.test> SIZE=abc", 501, null);
      await command(c, "MAIL FROM:<a@remote.test> SIZE=", 501, null);
      await command(c, "MAIL FROM:<a@remote.test> SIZE=1000", 250, "2.1.0");
    });

    test("unknown MAIL parameter gets 555 5.5.4", async () => {
      const c = await session();
      await command(c, "MAIL FROM:<a@remote.test> FOO=bar", 555, "5.5.4");
      await command(c, "MAIL FROM:<a@remote.test> MT-PRIORITY=3", 555, "5.5.4");
      await command(c, "MAIL FROM:<a@remote.test> BODY=BINARYMIME", 555, "5.5.4");
    });

    test("BODY=8BITMIME and BODY=7BIT are accepted", async () => {
      const c = await session();
      await command(c, "MAIL FROM:<a@remote.test> BODY=8BITMIME", 250, "2.1.0");
      await command(c, "RSET", 250, "2.0.0");
      await command(c, "MAIL FROM:<a@remote.test> BODY=7BIT SIZE=10", 250, "2.1.0");
    });

    test("a non-ASCII address needs SMTPUTF8: 553 5.6.7 without, delivered with it", async () => {
      const c = await session();
      await command(c, "MAIL FROM:<jörg@bücher.test>", 553, "5.6.7");
      await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
      await command(c, "RCPT TO:<jörg@localhost>", 553, "5.6.7");
      await command(c, "RSET", 250, "2.0.0");
      const content = Buffer.from("Subject: Grüße\r\n\r\nÜmlaut body, UTF-8.\r\n", "utf8");
      const id = await sendMessage(c, "jörg@bücher.test", ["alice@localhost"], content, " SMTPUTF8 BODY=8BITMIME");
      const file = server.mailbox("alice@localhost").find((f) => readsId(f, id));
      assert.ok(file, "delivered to alice");
      assertDelivered(file, { sender: "jörg@bücher.test", rcpt: "alice@localhost", id, content, protocol: "UTF8SMTP" });
    });
  });

  describe("RCPT TO: who receives (never an open relay)", () => {
    test("local user 250 2.1.5, unknown local user 550 5.1.1, in any local domain", async () => {
      const c = await session();
      await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
      await command(c, "RCPT TO:<bob@localhost>", 250, "2.1.5");
      await command(c, "RCPT TO:<BOB@LocalHost>", 250, "2.1.5");
      await command(c, "RCPT TO:<carol@example.test>", 250, "2.1.5");
      await command(c, "RCPT TO:<nobody@localhost>", 550, "5.1.1");
      await command(c, "RCPT TO:<bob@example.test>", 550, "5.1.1");
    });

    test("non-local domains get 554 5.7.1, including address literals and relay tricks", async () => {
      const c = await session();
      await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
      for (const to of ["someone@example.org", "user@[127.0.0.1]", "bob@[127.0.0.1]", "bob@localhost.example.org", "bob@sub.localhost"]) {
        await command(c, `RCPT TO:<${to}>`, 554, "5.7.1");
      }
      // The percent hack and quoted "@" are local parts here, not routing: unknown users.
      await command(c, "RCPT TO:<someone%example.org@localhost>", 550, "5.1.1");
      await command(c, 'RCPT TO:<"someone@example.org"@localhost>', 550, "5.1.1");
      await command(c, "DATA", 554, "5.5.1");
    });

    test("RCPT TO:<> gets 501 5.1.3; malformed RCPT gets 501", async () => {
      const c = await session();
      await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
      await command(c, "RCPT TO:<>", 501, "5.1.3");
      await command(c, "RCPT TO:bob@localhost", 501, null);
      await command(c, "RCPT FROM:<bob@localhost>", 501, null);
      await command(c, "RCPT TO:<bob@>", 501, null);
      await command(c, "RCPT TO:<bob@localhost> FOO=1", 555, "5.5.4");
    });

    test("RCPT TO:<Postmaster> without a domain reaches postmaster@localhost (an alias here)", async () => {
      const c = await session();
      const before = server.mailbox("alice@localhost").length;
      const id = await sendMessage(c, "a@remote.test", ["Postmaster"], MESSAGE);
      const files = server.mailbox("alice@localhost");
      assert.equal(files.length, before + 1);
      const file = files.find((f) => readsId(f, id));
      assert.ok(file);
      assertDelivered(file, { sender: "a@remote.test", rcpt: "postmaster@localhost", id, content: MESSAGE });
      await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
      await command(c, "RCPT TO:<postmaster>", 250, "2.1.5");
      await command(c, "RCPT TO:<POSTMASTER@localhost>", 250, "2.1.5");
    });

    test("a source route is ignored (RFC 5321 §4.1.2): <@relay.test:bob@localhost> is bob", async () => {
      const c = await session();
      await command(c, "MAIL FROM:<a@remote.test>", 250, "2.1.0");
      await command(c, "RCPT TO:<@relay.test,@other.test:bob@localhost>", 250, "2.1.5");
      await command(c, "RCPT TO:<@relay.test:someone@example.org>", 554, "5.7.1");
    });
  });

  describe("pipelining (RFC 2920)", () => {
    // EHLO must end its group (RFC 2920 §3.1): PIPELINING is offered by its answer.
    test("EHLO, then MAIL..DATA in one write: replies in order, all before 354; then MAIL..QUIT in one write", async () => {
      const c = await connect();
      await expectReply(c, 220, null);
      c.write("EHLO pipe.test\r\n");
      const ehlo = await expectReply(c, 250, null);
      c.write(
          "MAIL FROM:<pipe@remote.test>\r\n" +
          "RCPT TO:<alice@localhost>\r\n" +
          "RCPT TO:<nobody@localhost>\r\n" +
          "RCPT TO:<bob@localhost>\r\n" +
          "DATA\r\n",
      );
      assert.equal(ehlo.lines[0], `${HOSTNAME} Hello pipe.test [127.0.0.1]`);
      await expectReply(c, 250, "2.1.0");
      await expectReply(c, 250, "2.1.5");
      await expectReply(c, 550, "5.1.1");
      await expectReply(c, 250, "2.1.5");
      await expectReply(c, 354, null);
      assert.equal(c.pending, "", "nothing after 354 before the data");
      const first = Buffer.from("Subject: pipelined 1\r\n\r\nfirst\r\n");
      c.write(dataStream(first));
      const id1 = queuedId(await c.reply());
      const second = Buffer.from("Subject: pipelined 2\r\n\r\n.second\r\n");
      c.write(
        Buffer.concat([
          Buffer.from("MAIL FROM:<pipe@remote.test>\r\nRCPT TO:<bob@localhost>\r\nRCPT TO:<x@elsewhere.test>\r\nNOOP\r\nDATA\r\n"),
          dataStream(second),
          Buffer.from("RSET\r\nQUIT\r\n"),
        ]),
      );
      await expectReply(c, 250, "2.1.0");
      await expectReply(c, 250, "2.1.5");
      await expectReply(c, 554, "5.7.1");
      await expectReply(c, 250, "2.0.0");
      await expectReply(c, 354, null);
      const id2 = queuedId(await c.reply());
      await expectReply(c, 250, "2.0.0");
      await expectReply(c, 221, "2.0.0");
      await c.waitClosed();
      assert.equal(c.pending, "");
      for (const rcpt of ["alice@localhost", "bob@localhost"]) {
        const file = server.mailbox(rcpt).find((f) => readsId(f, id1));
        assert.ok(file, `first message for ${rcpt}`);
        assertDelivered(file, { sender: "pipe@remote.test", rcpt, id: id1, content: first, helo: "pipe.test" });
      }
      const file2 = server.mailbox("bob@localhost").find((f) => readsId(f, id2));
      assert.ok(file2, "second message for bob");
      assertDelivered(file2, { sender: "pipe@remote.test", rcpt: "bob@localhost", id: id2, content: second, helo: "pipe.test" });
      assert.equal(server.mailbox("alice@localhost").filter((f) => readsId(f, id2)).length, 0);
    });

    test("the server answers a whole pipelined batch in one write (RFC 2920 §3.1)", async () => {
      const c = await session();
      c.write("NOOP\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@localhost>\r\nRSET\r\n");
      // All four replies must be there together; read them without sending anything else.
      const replies = [await c.reply(), await c.reply(), await c.reply(), await c.reply()];
      assert.deepEqual(
        replies.map((r) => r.code),
        [250, 250, 250, 250],
      );
    });
  });

  describe("transaction log", () => {
    test("one JSON line per transaction with id, peer, helo, from, rcpts, size, result", async () => {
      const c = await session("logger.test");
      await command(c, "MAIL FROM:<log@remote.test>", 250, "2.1.0");
      await command(c, "RCPT TO:<bob@localhost>", 250, "2.1.5");
      await command(c, "RCPT TO:<nobody@localhost>", 550, "5.1.1");
      await command(c, "DATA", 354, null);
      c.write(dataStream(MESSAGE));
      const id = queuedId(await c.reply());
      const lines = await eventually("the transaction log line", () => {
        const found = server.logLines().filter((l) => l.msg === "transaction" && l.id === id);
        return found.length ? found : null;
      });
      assert.equal(lines.length, 1);
      const l = lines[0]!;
      assert.equal(l.peer, "127.0.0.1");
      assert.equal(l.helo, "logger.test");
      assert.equal(l.from, "log@remote.test");
      const rcpts = l.rcpts as { to: string; reply: string }[];
      assert.deepEqual(
        rcpts.map((r) => r.to),
        ["bob@localhost", "nobody@localhost"],
      );
      assert.match(rcpts[0]!.reply, /^250 2\.1\.5/);
      assert.match(rcpts[1]!.reply, /^550 5\.1\.1/);
      assert.equal(l.size, MESSAGE.length);
      assert.match(String(l.result), new RegExp(`^250 2\\.0\\.0 Ok: queued as ${id}`));
    });
  });
});
