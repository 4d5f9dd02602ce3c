// End-to-end tests of DATA (RFC 5321 §4.1.1.4, §4.5.2) against the real `petrel serve`: the stored
// copy is byte-exact (trace headers + content), dot-stuffing is removed, 8-bit passes, large messages
// stream, one copy per mailbox, max_message_size is enforced after the final dot, and SMTP smuggling
// (CVE-2023-51764) is impossible in both bare_line_endings modes.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { RawSmtp } from "./helpers/smtp-client.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import {
  assertDelivered,
  command,
  dataStream,
  deliveredContent,
  drainUntilClosed,
  expectReply,
  greeted,
  queuedId,
  readsId,
  sendMessage,
  sleep,
  tmpFiles,
} from "./smtp-protocol-helpers.js";

const USERS = ["alice", "bob", "carol"].map((u) => [`${u}@localhost`, `pw-${u}`] as const);
/** Each `user add` costs a CLI start; the servers that need fewer users get fewer. */
const TWO_USERS = USERS.slice(0, 2);

/** Tracks connections so `after` closes them even when a test fails half-way. */
function connections(port: () => number) {
  const open: RawSmtp[] = [];
  return {
    async session(helo?: string): Promise<RawSmtp> {
      const c = await greeted(port(), helo);
      open.push(c);
      return c;
    },
    closeAll(): void {
      for (const c of open) c.close();
    },
  };
}

function only(server: TestServer, address: string, id: string): string {
  const files = server.mailbox(address).filter((f) => readsId(f, id));
  assert.equal(files.length, 1, `one copy of ${id} for ${address}`);
  return files[0]!;
}

describe("DATA content", () => {
  let server: TestServer;
  const conns = connections(() => server.smtpPort);

  before(async () => {
    server = await startTestServer({ users: USERS });
    assert.equal(server.petrel(["alias", "add", "al@localhost", "alice@localhost"]).status, 0);
    assert.equal(server.petrel(["list", "add", "team@localhost", "alice@localhost", "bob@localhost"]).status, 0);
  });
  after(async () => {
    conns.closeAll();
    assert.equal(await server.stop(), 0);
  });

  test("the delivered file is Return-Path + Received + the content exactly as sent; the 250 names the id in Received", async () => {
    const c = await conns.session();
    const content = Buffer.from("From: <s@remote.test>\r\nTo: <alice@localhost>\r\nSubject: exact\r\n\r\nLine one\r\n\r\n  indented\ttab \r\nlast\r\n");
    const id = await sendMessage(c, "s@remote.test", ["alice@localhost"], content);
    assertDelivered(only(server, "alice@localhost", id), { sender: "s@remote.test", rcpt: "alice@localhost", id, content });
    assert.deepEqual(tmpFiles(server.dataDir, "alice@localhost"), []);
  });

  test("dot-stuffing is removed: '..x' is stored as '.x', '...' as '..', '..' as '.'", async () => {
    const c = await conns.session();
    await command(c, "MAIL FROM:<dots@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<alice@localhost>", 250, "2.1.5");
    await command(c, "DATA", 354, null);
    c.write("..leading\r\nSubject: dots\r\n\r\n..x\r\n...\r\n..\r\nmid.dle\r\n. space\r\n....four\r\n.\r\n");
    const id = queuedId(await c.reply());
    const content = Buffer.from(".leading\r\nSubject: dots\r\n\r\n.x\r\n..\r\n.\r\nmid.dle\r\n space\r\n...four\r\n");
    assertDelivered(only(server, "alice@localhost", id), { sender: "dots@remote.test", rcpt: "alice@localhost", id, content });
  });

  test("an empty message (just '.') is delivered with only the trace headers", async () => {
    const c = await conns.session();
    const id = await sendMessage(c, "empty@remote.test", ["bob@localhost"], Buffer.alloc(0));
    assertDelivered(only(server, "bob@localhost", id), { sender: "empty@remote.test", rcpt: "bob@localhost", id, content: Buffer.alloc(0) });
  });

  test("8-bit bytes pass unchanged: latin1 0xE9, every byte 0x80-0xFF, UTF-8 text", async () => {
    const c = await conns.session();
    const high = Buffer.alloc(128, 0).map((_, i) => 0x80 + i);
    const content = Buffer.concat([
      Buffer.from("Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ncaf", "latin1"),
      Buffer.from([0xe9]),
      Buffer.from("\r\n"),
      high,
      Buffer.from("\r\n"),
      Buffer.from("Grüße, 日本語, emoji 🐦\r\n", "utf8"),
      Buffer.from([0x01, 0x7f, 0x09, 0x0c, 0x1b]),
      Buffer.from("\r\n"),
    ]);
    const id = await sendMessage(c, "eight@remote.test", ["alice@localhost"], content, " BODY=8BITMIME");
    assertDelivered(only(server, "alice@localhost", id), { sender: "eight@remote.test", rcpt: "alice@localhost", id, content });
  });

  test("the end <CRLF>.<CRLF> and stuffed dots split into one-byte packets", async () => {
    const c = await conns.session();
    await command(c, "MAIL FROM:<slow@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<bob@localhost>", 250, "2.1.5");
    await command(c, "DATA", 354, null);
    c.write("Subject: slow\r\n\r\nbody");
    for (const piece of ["\r", "\n", ".", ".", "x", "\r", "\n", ".", "\r", "\n"]) {
      await sleep(15);
      c.write(piece);
    }
    const id = queuedId(await c.reply());
    const content = Buffer.from("Subject: slow\r\n\r\nbody\r\n.x\r\n");
    assertDelivered(only(server, "bob@localhost", id), { sender: "slow@remote.test", rcpt: "bob@localhost", id, content });
  });

  test("a 5 MB message arriving in thousands of small writes is byte-exact", async () => {
    const c = await conns.session();
    // Lines of varied length, some starting with dots, some 8-bit: deterministic pseudo-random text.
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    const parts: Buffer[] = [Buffer.from("Subject: big\r\n\r\n")];
    let size = parts[0]!.length;
    const alphabet = Buffer.from("abcdefghijklmnopqrstuvwxyz0123456789 .,;:-\xe9\xfc", "latin1");
    while (size < 5 * 1024 * 1024) {
      const len = rnd(5) === 0 ? rnd(998) : rnd(80);
      const line = Buffer.alloc(len + 2);
      for (let i = 0; i < len; i++) line[i] = alphabet[rnd(alphabet.length)]!;
      if (rnd(10) === 0 && len > 0) line[0] = 0x2e; // "."
      if (rnd(40) === 0 && len > 1) line[1] = 0x2e; // ".." after stuffing: "..."
      line[len] = 13;
      line[len + 1] = 10;
      parts.push(line);
      size += line.length;
    }
    const content = Buffer.concat(parts);
    const stream = dataStream(content);
    await command(c, "MAIL FROM:<big@remote.test> SIZE=" + content.length, 250, "2.1.0");
    await command(c, "RCPT TO:<carol@localhost>", 250, "2.1.5");
    await command(c, "DATA", 354, null);
    let pos = 0;
    let writes = 0;
    while (pos < stream.length) {
      const n = 1 + rnd(4096);
      c.write(stream.subarray(pos, pos + n));
      pos += n;
      // Yield now and then so the pieces leave as separate packets rather than one coalesced buffer.
      if (++writes % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.ok(writes > 1000);
    const id = queuedId(await c.reply(30_000));
    const file = only(server, "carol@localhost", id);
    assertDelivered(file, { sender: "big@remote.test", rcpt: "carol@localhost", id, content });
    // The file has LF line ends; the CRLF size (,W=, what POP3 sends) is the size sent with the trace headers.
    const name = file.slice(file.lastIndexOf("/") + 1);
    const lines = fs.readFileSync(file).filter((b) => b === 10).length;
    assert.equal(Number(/,W=(\d+)/.exec(name)?.[1]), Number(/,S=(\d+)/.exec(name)?.[1]) + lines);
  });

  test("bare LF and bare CR in the content are stored as line ends (LF in the file; bare_line_endings = normalize)", async () => {
    const c = await conns.session();
    await command(c, "MAIL FROM:<bare@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<alice@localhost>", 250, "2.1.5");
    await command(c, "DATA", 354, null);
    c.write("Subject: bare\r\n\r\nunix\nline\nmac\rline\r\n.\r\n");
    const id = queuedId(await c.reply());
    const content = Buffer.from("Subject: bare\r\n\r\nunix\r\nline\r\nmac\r\nline\r\n");
    assertDelivered(only(server, "alice@localhost", id), { sender: "bare@remote.test", rcpt: "alice@localhost", id, content });
  });

  test("several recipients get one copy each, each with its own 'for <rcpt>'", async () => {
    const c = await conns.session();
    const content = Buffer.from("Subject: to three\r\n\r\nhi all\r\n");
    const rcpts = ["alice@localhost", "bob@localhost", "carol@localhost"];
    const id = await sendMessage(c, "multi@remote.test", rcpts, content);
    for (const rcpt of rcpts) assertDelivered(only(server, rcpt, id), { sender: "multi@remote.test", rcpt, id, content });
  });

  test("the same mailbox named twice (directly, in another case, by alias, by list) gets one copy", async () => {
    const c = await conns.session();
    const content = Buffer.from("Subject: dedup\r\n\r\nonce\r\n");
    const id = await sendMessage(c, "dup@remote.test", ["alice@localhost", "Alice@localhost", "al@localhost", "team@localhost", "bob@localhost"], content);
    assertDelivered(only(server, "alice@localhost", id), { sender: "dup@remote.test", rcpt: "alice@localhost", id, content });
    assert.equal(server.mailbox("bob@localhost").filter((f) => readsId(f, id)).length, 1);
    assert.equal(server.mailbox("carol@localhost").filter((f) => readsId(f, id)).length, 0);
  });

  test("a list reaches each member once", async () => {
    const c = await conns.session();
    const content = Buffer.from("Subject: team\r\n\r\nlist mail\r\n");
    const id = await sendMessage(c, "boss@remote.test", ["team@localhost"], content);
    for (const rcpt of ["alice@localhost", "bob@localhost"]) {
      assertDelivered(only(server, rcpt, id), { sender: "boss@remote.test", rcpt: "team@localhost", id, content });
    }
  });

  test("several messages in one session, and DATA with an argument gets 501", async () => {
    const c = await conns.session();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await sendMessage(c, "seq@remote.test", ["bob@localhost"], Buffer.from(`Subject: ${i}\r\n\r\n${i}\r\n`)));
    assert.equal(new Set(ids).size, 3, "queue ids are unique");
    for (const [i, id] of ids.entries()) {
      assertDelivered(only(server, "bob@localhost", id), { sender: "seq@remote.test", rcpt: "bob@localhost", id, content: Buffer.from(`Subject: ${i}\r\n\r\n${i}\r\n`) });
    }
    await command(c, "MAIL FROM:<seq@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<bob@localhost>", 250, "2.1.5");
    await command(c, "DATA now", 501, "5.5.4");
    await command(c, "DATA", 354, null);
    c.write(".\r\n");
    queuedId(await c.reply());
  });
});

describe("max_message_size = 1000", () => {
  let server: TestServer;
  const conns = connections(() => server.smtpPort);
  const MAX = 1000;

  before(async () => {
    server = await startTestServer({ users: TWO_USERS, toml: `[limits]\nmax_message_size = ${MAX}\n` });
  });
  after(async () => {
    conns.closeAll();
    assert.equal(await server.stop(), 0);
  });

  const sized = (n: number) => {
    const head = Buffer.from("Subject: size\r\n\r\n");
    const body = Buffer.alloc(n - head.length, "x");
    for (let i = 70; i < body.length - 3; i += 72) body.write("\r\n", i);
    body.write("\r\n", body.length - 2);
    return Buffer.concat([head, body]);
  };

  test("EHLO advertises SIZE 1000; MAIL SIZE=1001 gets 552 5.3.4, SIZE=1000 is accepted", async () => {
    const c = await RawSmtp.connect(server.smtpPort);
    await expectReply(c, 220, null);
    const r = await command(c, "EHLO client.test", 250, null);
    assert.ok(r.lines.includes(`SIZE ${MAX}`), r.raw);
    await command(c, `MAIL FROM:<a@remote.test> SIZE=${MAX + 1}`, 552, "5.3.4");
    await command(c, `MAIL FROM:<a@remote.test> SIZE=${MAX}`, 250, "2.1.0");
    c.close();
  });

  test("DATA over the limit: 552 5.3.4 after the final dot, nothing delivered, the next message works", async () => {
    const c = await conns.session();
    for (const n of [MAX + 1, 200_000]) {
      await command(c, "MAIL FROM:<big@remote.test>", 250, "2.1.0");
      await command(c, "RCPT TO:<alice@localhost>", 250, "2.1.5");
      await command(c, "DATA", 354, null);
      c.write(dataStream(sized(n)));
      await expectReply(c, 552, "5.3.4");
      assert.deepEqual(server.mailbox("alice@localhost"), [], `nothing delivered for ${n} bytes`);
      assert.deepEqual(tmpFiles(server.dataDir, "alice@localhost"), [], "no temporary file left");
    }
    const content = sized(MAX);
    const id = await sendMessage(c, "ok@remote.test", ["alice@localhost"], content);
    assertDelivered(only(server, "alice@localhost", id), { sender: "ok@remote.test", rcpt: "alice@localhost", id, content });
  });

  test("BDAT over the limit: 552 5.3.4, nothing delivered, the next message works", async () => {
    const c = await conns.session();
    const big = sized(MAX + 1);
    await command(c, "MAIL FROM:<big@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<bob@localhost>", 250, "2.1.5");
    c.write(`BDAT ${big.length} LAST\r\n`);
    c.write(big);
    await expectReply(c, 552, "5.3.4");
    assert.deepEqual(server.mailbox("bob@localhost"), []);

    // In two chunks, the second crossing the limit.
    await command(c, "MAIL FROM:<big@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<bob@localhost>", 250, "2.1.5");
    c.write(Buffer.concat([Buffer.from("BDAT 600\r\n"), big.subarray(0, 600)]));
    await expectReply(c, 250, "2.0.0");
    c.write(Buffer.concat([Buffer.from(`BDAT ${big.length - 600} LAST\r\n`), big.subarray(600)]));
    await expectReply(c, 552, "5.3.4");
    assert.deepEqual(server.mailbox("bob@localhost"), []);
    assert.deepEqual(tmpFiles(server.dataDir, "bob@localhost"), []);

    const content = sized(MAX);
    await command(c, "MAIL FROM:<ok@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<bob@localhost>", 250, "2.1.5");
    c.write(Buffer.concat([Buffer.from(`BDAT ${content.length} LAST\r\n`), content]));
    const id = queuedId(await c.reply());
    assertDelivered(only(server, "bob@localhost", id), { sender: "ok@remote.test", rcpt: "bob@localhost", id, content });
  });
});

// The fake ends of CVE-2023-51764 and friends: none of them ends DATA; only <CRLF>.<CRLF> does.
const FAKE_ENDS = ["\n.\n", "\n.\r\n", "\r.\r", "\r\n.\n", "\r\n.\r"];
const PREFIX = "Subject: smuggling\r\n\r\nhello";
const SMUGGLED = "MAIL FROM:<evil@x>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\nsmuggled\r\n";
/** The payload after 354: the real end is the final "\r\n.\r\n" (after "smuggled"). */
const smugglingPayload = (fake: string) => `${PREFIX}${fake}${SMUGGLED}.\r\nQUIT\r\n`;

async function smuggle(c: RawSmtp, fake: string): Promise<string[]> {
  await command(c, "MAIL FROM:<sender@remote.test>", 250, "2.1.0");
  await command(c, "RCPT TO:<alice@localhost>", 250, "2.1.5");
  await command(c, "DATA", 354, null);
  c.write(smugglingPayload(fake));
  // Everything the server says until it closes: one reply for the data, 221 for QUIT, nothing else.
  return (await drainUntilClosed(c)).map((r) => r.raw);
}

describe("SMTP smuggling (bare_line_endings = normalize)", () => {
  let server: TestServer;
  const conns = connections(() => server.smtpPort);
  before(async () => {
    server = await startTestServer({ users: TWO_USERS });
  });
  after(async () => {
    conns.closeAll();
    assert.equal(await server.stop(), 0);
  });

  for (const fake of FAKE_ENDS) {
    test(`fake end ${JSON.stringify(fake)}: one message with the smuggled text inside, nothing for bob`, async () => {
      const before = new Set(server.mailbox("alice@localhost"));
      const c = await conns.session();
      const replies = await smuggle(c, fake);
      assert.equal(replies.length, 2, JSON.stringify(replies));
      assert.match(replies[0]!, /^250 2\.0\.0 Ok: queued as [A-Z0-9]+\r\n$/);
      assert.equal(replies[1]!.slice(0, 10), "221 2.0.0 ");
      assert.deepEqual(server.mailbox("bob@localhost"), []);
      const added = server.mailbox("alice@localhost").filter((f) => !before.has(f));
      assert.equal(added.length, 1);
      const id = /queued as ([A-Z0-9]+)/.exec(replies[0]!)![1]!;
      assert.ok(readsId(added[0]!, id));
      const content = deliveredContent(added[0]!).toString("latin1");
      const prefix = PREFIX.replace(/\r\n/g, "\n"), smuggled = SMUGGLED.replace(/\r\n/g, "\n");
      assert.ok(content.startsWith(prefix) && content.endsWith(smuggled), JSON.stringify(content));
      // The fake end itself, normalised: the bare CR/LF became a line end, stored as LF (a dot that
      // began a line may be taken as stuffing).
      assert.match(content.slice(prefix.length, content.length - smuggled.length), /^\n\.?\n$/);
      assert.ok(!content.includes("\r"), `only LF line ends are stored: ${JSON.stringify(content)}`);
    });
  }

  test("all fake ends in one message: still one message, nothing for bob", async () => {
    const before = server.mailbox("alice@localhost").length;
    const c = await conns.session();
    await command(c, "MAIL FROM:<sender@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<alice@localhost>", 250, "2.1.5");
    await command(c, "DATA", 354, null);
    c.write(PREFIX + FAKE_ENDS.map((f) => f + SMUGGLED).join("") + ".\r\nQUIT\r\n");
    const replies = (await drainUntilClosed(c)).map((r) => r.code);
    assert.deepEqual(replies, [250, 221]);
    assert.equal(server.mailbox("alice@localhost").length, before + 1);
    assert.deepEqual(server.mailbox("bob@localhost"), []);
  });
});

describe("SMTP smuggling (bare_line_endings = reject)", () => {
  let server: TestServer;
  const conns = connections(() => server.smtpPort);
  before(async () => {
    server = await startTestServer({ users: TWO_USERS, toml: '[smtp]\nbare_line_endings = "reject"\n' });
  });
  after(async () => {
    conns.closeAll();
    assert.equal(await server.stop(), 0);
  });

  for (const fake of FAKE_ENDS) {
    test(`fake end ${JSON.stringify(fake)}: 550 5.6.0 and nothing delivered`, async () => {
      const before = server.mailbox("alice@localhost");
      const c = await conns.session();
      const replies = await smuggle(c, fake);
      assert.equal(replies.length, 2, JSON.stringify(replies));
      assert.match(replies[0]!, /^550 5\.6\.0 /);
      assert.equal(replies[1]!.slice(0, 10), "221 2.0.0 ");
      assert.deepEqual(server.mailbox("alice@localhost"), before);
      assert.deepEqual(server.mailbox("bob@localhost"), []);
      assert.deepEqual(tmpFiles(server.dataDir, "alice@localhost"), []);
    });
  }

  test("a clean CRLF message is still accepted", async () => {
    const c = await conns.session();
    const content = Buffer.from("Subject: clean\r\n\r\nonly CRLF\r\n..dot\r\n");
    const id = await sendMessage(c, "clean@remote.test", ["alice@localhost"], content);
    assertDelivered(only(server, "alice@localhost", id), { sender: "clean@remote.test", rcpt: "alice@localhost", id, content });
  });
});
