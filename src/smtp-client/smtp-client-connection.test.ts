// Unit tests for the outbound SMTP client against the scriptable sink (src/testing/smtp-sink.ts) on
// loopback: extensions honoured or refused, TLS (STARTTLS, required, implicit, verified), AUTH,
// per-recipient results, lost peers and timeouts, dot-stuffing, BDAT, reuse, and bounded memory.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import tls from "node:tls";
import v8 from "node:v8";
import vm from "node:vm";
import selfsigned from "selfsigned";
import { SmtpSink, type SinkScript } from "../testing/smtp-sink.js";
import { ClientError } from "./client-error.js";
import { SmtpClientConnection, type ClientOptions, type OutboundMessage } from "./smtp-client-connection.js";

let context: tls.SecureContext;
before(async () => {
  const pems = await selfsigned.generate([{ name: "commonName", value: "sink.test" }], { keySize: 2048, algorithm: "sha256" });
  context = tls.createSecureContext({ cert: pems.cert, key: pems.private, minVersion: "TLSv1.2" });
});

const sinks: SmtpSink[] = [];
after(async () => {
  await Promise.all(sinks.map((s) => s.close()));
});

async function sink(script: SinkScript = {}): Promise<SmtpSink> {
  const s = await SmtpSink.start(script);
  sinks.push(s);
  return s;
}

/** A full collection between samples, so RSS and live memory show what is held, not garbage not yet collected. */
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

const OPTS: ClientOptions = { helo: "client.test", security: "none" };

function connect(s: SmtpSink, opts: Partial<ClientOptions> = {}): Promise<SmtpClientConnection> {
  return SmtpClientConnection.connect("sink.test", "127.0.0.1", s.port, { ...OPTS, ...opts });
}

function message(content: string | Buffer, recipients: readonly string[] = ["a@remote.test"], more: Partial<OutboundMessage> = {}): OutboundMessage {
  const body = Buffer.isBuffer(content) ? content : Buffer.from(content, "utf8");
  return {
    sender: "me@petrel.test",
    recipients,
    size: body.length,
    eightBit: false,
    smtpUtf8: false,
    open: async function* () {
      yield body;
    },
    ...more,
  };
}

const MSG = "Subject: hi\r\n\r\nhello\r\n";

test("pipelining offered: MAIL, every RCPT and DATA go in one write; the message arrives intact", async () => {
  const s = await sink();
  const c = await connect(s);
  const out = await c.send(message(MSG, ["a@remote.test", "b@remote.test"]));
  await c.quit();
  assert.deepEqual(out.results.map((r) => [r.to, r.kind, r.reply.code]), [["a@remote.test", "sent", 250], ["b@remote.test", "sent", 250]]);
  const cmds = s.sessions[0]!.commands;
  const mail = cmds.findIndex((l) => l.startsWith("MAIL"));
  assert.deepEqual(cmds.slice(mail, mail + 4), ["MAIL FROM:<me@petrel.test> SIZE=22", "RCPT TO:<a@remote.test>", "RCPT TO:<b@remote.test>", "DATA"]);
  assert.deepEqual(s.sessions[0]!.pipelined.slice(mail, mail + 3), [true, true, true], "MAIL and the RCPTs had the rest behind them");
  assert.equal(s.transactions[0]!.body!.toString(), MSG);
  assert.equal(out.transaction?.code, 250);
});

test("no PIPELINING: one command at a time, never a command before the last reply", async () => {
  const s = await sink({ extensions: ["8BITMIME"] });
  const c = await connect(s);
  const out = await c.send(message(MSG, ["a@remote.test", "b@remote.test"]));
  await c.quit();
  assert.deepEqual(out.results.map((r) => r.kind), ["sent", "sent"]);
  assert.ok(s.sessions[0]!.pipelined.every((p) => !p), String(s.sessions[0]!.pipelined));
  assert.ok(s.sessions[0]!.commands.includes("MAIL FROM:<me@petrel.test>"), "no SIZE parameter without SIZE");
});

test("EHLO refused with 5xx: HELO, and no extensions are used", async () => {
  const s = await sink({ extensions: "refuse" });
  const c = await connect(s);
  assert.equal(c.extensions.size, 0);
  const out = await c.send(message(MSG));
  await c.quit();
  assert.equal(out.results[0]!.kind, "sent");
  assert.deepEqual(s.sessions[0]!.commands.slice(0, 3), ["EHLO client.test", "HELO client.test", "MAIL FROM:<me@petrel.test>"]);
});

test("per-recipient replies: 250 sent, 451 deferred, 550 bounced; the end-of-data reply settles the accepted", async () => {
  for (const pipelining of [true, false]) {
    const s = await sink({
      extensions: pipelining ? ["PIPELINING"] : [],
      rcpt: (to) => (to.startsWith("ok") ? "250 2.1.5 Ok" : to.startsWith("later") ? "451 4.3.0 try later" : "550 5.1.1 no such user"),
      dataEnd: () => "250 2.0.0 queued as X1",
    });
    const c = await connect(s);
    const out = await c.send(message(MSG, ["ok@r.test", "later@r.test", "gone@r.test", "ok2@r.test"]));
    await c.quit();
    assert.deepEqual(
      out.results.map((r) => [r.to, r.kind, r.reply.code, r.reply.enhanced, r.reply.lines[0]]),
      [
        ["ok@r.test", "sent", 250, "2.0.0", "queued as X1"],
        ["later@r.test", "deferred", 451, "4.3.0", "try later"],
        ["gone@r.test", "bounced", 550, "5.1.1", "no such user"],
        ["ok2@r.test", "sent", 250, "2.0.0", "queued as X1"],
      ],
      `pipelining ${pipelining}`,
    );
    assert.equal(s.transactions[0]!.rcptLines.length, 2);
  }
});

test("every RCPT refused: no content is sent, each keeps its own reply (pipelined DATA answered 554)", async () => {
  const s = await sink({ rcpt: () => "550 5.1.1 no" });
  const c = await connect(s);
  const out = await c.send(message(MSG, ["x@r.test", "y@r.test"]));
  assert.deepEqual(out.results.map((r) => r.kind), ["bounced", "bounced"]);
  assert.equal(s.transactions.length, 0);
  assert.equal(c.currentState, "ready", "the connection stays usable");
  await c.quit();
});

test("MAIL refused: every recipient gets the MAIL reply", async () => {
  const s = await sink({ extensions: [], mail: () => "553 5.7.1 sender refused" });
  const c = await connect(s);
  const out = await c.send(message(MSG, ["x@r.test", "y@r.test"]));
  await c.quit();
  assert.deepEqual(out.results.map((r) => [r.kind, r.reply.code]), [["bounced", 553], ["bounced", 553]]);
  assert.ok(!s.sessions[0]!.commands.some((l) => l.startsWith("RCPT")), "no RCPT after a refused MAIL");
});

test("SIZE smaller than the message: bounced 5.3.4 before anything is sent", async () => {
  const s = await sink({ extensions: ["PIPELINING", "SIZE 10"] });
  const c = await connect(s);
  const out = await c.send(message(MSG));
  await c.quit();
  assert.equal(out.results[0]!.kind, "bounced");
  assert.equal(out.results[0]!.reply.enhanced, "5.3.4");
  assert.match(out.results[0]!.reply.lines[0]!, /message too big for sink\.test/);
  assert.ok(!s.sessions[0]!.commands.some((l) => l.startsWith("MAIL")));
});

test("8-bit content to a peer without 8BITMIME: bounced 5.6.3, never sent; SMTPUTF8 likewise 5.6.7", async () => {
  const s = await sink({ extensions: ["PIPELINING"] });
  const c = await connect(s);
  const eight = await c.send(message("Subject: caf\u00e9\r\n\r\n\u00e9\r\n", ["a@r.test"], { eightBit: true }));
  const utf8 = await c.send(message(MSG, ["\u00fc@r.test"], { smtpUtf8: true }));
  await c.quit();
  assert.deepEqual([eight.results[0]!.kind, eight.results[0]!.reply.enhanced], ["bounced", "5.6.3"]);
  assert.match(eight.results[0]!.reply.lines[0]!, /8BITMIME/);
  assert.deepEqual([utf8.results[0]!.kind, utf8.results[0]!.reply.enhanced], ["bounced", "5.6.7"]);
  assert.ok(!s.sessions[0]!.commands.some((l) => l.startsWith("MAIL")));
});

test("8-bit content to a peer with 8BITMIME and SMTPUTF8: BODY=8BITMIME and SMTPUTF8 on MAIL, bytes unchanged", async () => {
  const s = await sink();
  const c = await connect(s);
  const content = "Subject: caf\u00e9\r\n\r\n\u00e9\r\n";
  const out = await c.send(message(content, ["\u00fc@r.test"], { eightBit: true, smtpUtf8: true }));
  await c.quit();
  assert.equal(out.results[0]!.kind, "sent");
  assert.match(s.transactions[0]!.mailLine, / BODY=8BITMIME SMTPUTF8$/);
  assert.equal(s.transactions[0]!.body!.toString("utf8"), content);
});

test("CHUNKING offered: BDAT chunks and BDAT 0 LAST, content not stuffed", async () => {
  const s = await sink({ extensions: ["PIPELINING", "CHUNKING", "8BITMIME"] });
  const c = await connect(s);
  const content = ".leading dot\r\n..two\r\n.\r\nend\r\n";
  const out = await c.send(message(content));
  await c.quit();
  assert.equal(out.results[0]!.kind, "sent");
  assert.equal(s.transactions[0]!.via, "BDAT");
  assert.equal(s.transactions[0]!.body!.toString(), content);
  assert.ok(s.sessions[0]!.commands.includes("BDAT 0 LAST"));
  assert.ok(!s.sessions[0]!.commands.includes("DATA"));
});

test("dot-stuffing round trip: lines of dots, a lone dot, a dot split across chunks come back byte for byte", async () => {
  const s = await sink();
  const c = await connect(s);
  const pieces = ["Subject: dots\r\n\r\n.\r\n..\r\n", ".", "x\r\n", "a.b\r\n.", "\r\n", "\r\n.\r", "\n", "last"];
  const content = pieces.join("");
  const out = await c.send({ ...message(content), open: async function* () {
    for (const p of pieces) yield Buffer.from(p);
  } });
  await c.quit();
  assert.equal(out.results[0]!.kind, "sent");
  // A last line without CRLF gets one before the terminator (RFC 5321 §4.1.1.4).
  assert.equal(s.transactions[0]!.body!.toString(), content + "\r\n");
});

test("DSN parameters only when the peer offers DSN; xtext-encoded", async () => {
  const dsn = { ret: "HDRS" as const, envid: "id+1 x", notify: new Map([["a@r.test", "SUCCESS,FAILURE"]]), orcpt: new Map([["a@r.test", "rfc822;A=b@r.test"]]) };
  const withDsn = await sink();
  const without = await sink({ extensions: ["PIPELINING"] });
  for (const s of [withDsn, without]) {
    const c = await connect(s);
    await c.send(message(MSG, ["a@r.test"], { dsn }));
    await c.quit();
  }
  assert.equal(withDsn.transactions[0]!.mailLine, "MAIL FROM:<me@petrel.test> SIZE=22 RET=HDRS ENVID=id+2B1+20x");
  assert.equal(withDsn.transactions[0]!.rcptLines[0], "RCPT TO:<a@r.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;A+3Db@r.test");
  assert.equal(without.transactions[0]!.mailLine, "MAIL FROM:<me@petrel.test>");
  assert.equal(without.transactions[0]!.rcptLines[0], "RCPT TO:<a@r.test>");
});

test("one connection, three messages, RSET between them", async () => {
  const s = await sink();
  const c = await connect(s);
  for (let i = 0; i < 3; i++) {
    const out = await c.send(message(`Subject: ${i}\r\n\r\nbody ${i}\r\n`, [`r${i}@r.test`], { sender: i === 2 ? "" : "me@petrel.test" }));
    assert.equal(out.results[0]!.kind, "sent");
  }
  await c.quit();
  assert.equal(s.sessions.length, 1);
  assert.equal(s.transactions.length, 3);
  assert.equal(s.sessions[0]!.commands.filter((l) => l === "RSET").length, 2);
  assert.equal(s.transactions[2]!.mailLine, "MAIL FROM:<> SIZE=22");
  assert.equal(s.transactions[1]!.body!.toString(), "Subject: 1\r\n\r\nbody 1\r\n");
});

test("a peer that drops mid-DATA: accepted recipients deferred 4.4.2, refused ones keep their 5xx; the connection is closed", async () => {
  const s = await sink({ dropAfterBytes: 100_000, rcpt: (to) => (to.startsWith("no") ? "550 5.1.1 no" : "250 2.1.5 ok") });
  const c = await connect(s);
  const big = "x".repeat(998) + "\r\n";
  const out = await c.send(message(`Subject: big\r\n\r\n${big.repeat(1000)}`, ["a@r.test", "no@r.test"]));
  assert.deepEqual(out.results.map((r) => [r.kind, r.reply.code, r.reply.enhanced]), [["deferred", 451, "4.4.2"], ["bounced", 550, "5.1.1"]]);
  assert.equal(c.currentState, "closed");
  await assert.rejects(c.send(message(MSG)), (e: unknown) => e instanceof ClientError && e.code === "state" && e.temporary);
});

test("timeouts (tiny values): a silent greeting is a temporary ClientError; silence after DATA defers", async () => {
  const silent = await sink({ silentOn: "GREETING" });
  await assert.rejects(connect(silent, { timeouts: { greeting: 100 } }), (e: unknown) => e instanceof ClientError && e.code === "timeout" && e.temporary && e.reply?.enhanced === "4.4.2");
  const slowEnd = await sink({ silentOn: "DATA-END" });
  const c = await connect(slowEnd, { timeouts: { dataEnd: 100 } });
  const t0 = Date.now();
  const out = await c.send(message(MSG));
  assert.ok(Date.now() - t0 < 2000);
  assert.equal(out.results[0]!.kind, "deferred");
  assert.match(out.results[0]!.reply.lines[0]!, /timed out waiting for sink\.test \(dataEnd\)/);
  const slowRcpt = await sink({ silentOn: "RCPT", extensions: [] });
  const c2 = await connect(slowRcpt, { timeouts: { rcpt: 100 } });
  assert.equal((await c2.send(message(MSG))).results[0]!.kind, "deferred");
});

test("nobody listening: a temporary connect error", async () => {
  const s = await sink();
  const port = s.port;
  await s.close();
  sinks.splice(sinks.indexOf(s), 1);
  await assert.rejects(SmtpClientConnection.connect("gone.test", "127.0.0.1", port, OPTS), (e: unknown) => e instanceof ClientError && e.code === "connect" && e.temporary);
});

test("a 554 greeting is a permanent ClientError carrying the reply", async () => {
  const s = await sink({ greeting: "554 5.7.1 go away" });
  await assert.rejects(connect(s), (e: unknown) => e instanceof ClientError && e.code === "greeting" && !e.temporary && e.reply?.code === 554);
  assert.deepEqual(s.sessions[0]!.commands, ["QUIT"]);
});

test("opportunistic: STARTTLS when offered (unverified), EHLO again; TLS version reported", async () => {
  const s = await sink({ tls: context });
  const c = await connect(s, { security: "opportunistic" });
  assert.ok(c.tls && /^TLSv1\.[23]$/.test(c.tls.version), JSON.stringify(c.tls));
  assert.equal(c.extensions.has("STARTTLS"), false, "extensions are the ones learnt after TLS");
  const out = await c.send(message(MSG));
  await c.quit();
  assert.equal(out.results[0]!.kind, "sent");
  assert.deepEqual(s.sessions[0]!.commands.slice(0, 3), ["EHLO client.test", "STARTTLS", "EHLO client.test"]);
  assert.equal(s.sessions[0]!.tls, true);
});

test("opportunistic without STARTTLS on offer: plaintext; require-tls: temporary 4.7.4 and QUIT", async () => {
  const s = await sink();
  const c = await connect(s, { security: "opportunistic" });
  assert.equal(c.tls, null);
  await c.quit();
  await assert.rejects(connect(s, { security: "require-tls" }), (e: unknown) => e instanceof ClientError && e.code === "tls" && e.temporary && e.reply?.enhanced === "4.7.4");
  assert.equal(s.sessions[1]!.commands.at(-1), "QUIT");
});

test("security none never starts TLS even when offered", async () => {
  const s = await sink({ tls: context });
  const c = await connect(s, { security: "none" });
  assert.equal(c.tls, null);
  await c.quit();
  assert.ok(!s.sessions[0]!.commands.includes("STARTTLS"));
});

test("a certificate that does not verify: temporary 4.7.5 when verification is on (the smarthost default)", async () => {
  const s = await sink({ tls: context });
  await assert.rejects(connect(s, { security: "require-tls" }), (e: unknown) => e instanceof ClientError && e.code === "tls" && e.temporary && e.reply?.enhanced === "4.7.5");
});

test("implicit TLS (port 465 style): the handshake comes first, then the greeting", async () => {
  const s = await sink({ tls: context, implicitTls: true });
  const c = await connect(s, { security: "tls", verifyCertificate: false });
  assert.ok(c.tls);
  const out = await c.send(message(MSG));
  await c.quit();
  assert.equal(out.results[0]!.kind, "sent");
  assert.ok(!s.sessions[0]!.commands.includes("STARTTLS"));
});

test("AUTH PLAIN after STARTTLS; AUTH LOGIN when only LOGIN is offered; a refused AUTH is a temporary ClientError", async () => {
  const users = new Map([["bob", "s3cret"]]);
  const plain = await sink({ tls: context, auth: { mechanisms: ["LOGIN", "PLAIN"], users } });
  const c = await connect(plain, { security: "require-tls", verifyCertificate: false, auth: { user: "bob", password: "s3cret" } });
  await c.quit();
  assert.equal(plain.sessions[0]!.authUser, "bob");
  assert.ok(plain.sessions[0]!.commands.some((l) => l.startsWith("AUTH PLAIN ")));

  const login = await sink({ tls: context, auth: { mechanisms: ["LOGIN"], users } });
  const c2 = await connect(login, { security: "opportunistic", auth: { user: "bob", password: "s3cret" } });
  await c2.quit();
  assert.equal(login.sessions[0]!.authUser, "bob");
  assert.ok(login.sessions[0]!.commands.includes("AUTH LOGIN"));

  await assert.rejects(connect(plain, { security: "require-tls", verifyCertificate: false, auth: { user: "bob", password: "wrong" } }), (e: unknown) => e instanceof ClientError && e.code === "auth" && e.temporary && e.reply?.code === 535);
});

test("no password in plaintext: AUTH over an unencrypted opportunistic connection is refused locally", async () => {
  const s = await sink({ auth: { mechanisms: ["PLAIN"], users: new Map() } });
  await assert.rejects(connect(s, { security: "opportunistic", auth: { user: "bob", password: "x" } }), (e: unknown) => e instanceof ClientError && e.code === "auth");
  assert.ok(!s.sessions[0]!.commands.some((l) => l.startsWith("AUTH")));
});

test("a source that fails mid-stream: deferred 4.3.0, the terminator never sent, nothing delivered", async () => {
  const s = await sink();
  const c = await connect(s);
  const out = await c.send({ ...message(MSG), open: async function* () {
    yield Buffer.from("Subject: half\r\n\r\n");
    throw new Error("EIO: disk gone");
  } });
  assert.deepEqual([out.results[0]!.kind, out.results[0]!.reply.enhanced], ["deferred", "4.3.0"]);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(s.transactions.length, 0);
});

test("50 MB streamed through DATA and through BDAT: RSS grows by far less than the message", { timeout: 60_000 }, async () => {
  const size = 50 * 1024 * 1024;
  const line = Buffer.from(".".repeat(78) + "\r\n"); // every line stuffed: the worst case for DATA
  const chunk = Buffer.concat(Array.from({ length: 819 }, () => line)); // 65,520 octets
  // The first run only warms up (the young generation grows to its working size once); the others are measured.
  for (const [n, ext] of [["PIPELINING", "SIZE 100000000"], ["PIPELINING", "SIZE 100000000"], ["PIPELINING", "CHUNKING"]].entries()) {
    const s = await sink({ extensions: ext });
    const c = await connect(s);
    const expected = createHash("sha256");
    let sent = 0;
    const chunks = Math.floor(size / chunk.length);
    for (let i = 0; i < chunks; i++) expected.update(chunk);
    gc();
    const rss0 = process.memoryUsage().rss;
    const live = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    const live0 = live();
    let peak = rss0;
    let livePeak = live0;
    const out = await c.send({ ...message(""), size: chunks * chunk.length, open: async function* () {
      for (let i = 0; i < chunks; i++) {
        sent += chunk.length;
        if (i % 64 === 0) {
          gc();
          peak = Math.max(peak, process.memoryUsage().rss);
          livePeak = Math.max(livePeak, live());
        }
        yield chunk;
      }
    } });
    await c.quit();
    assert.equal(out.results[0]!.kind, "sent");
    assert.equal(s.transactions[0]!.size, sent);
    assert.equal(s.transactions[0]!.sha256, expected.digest("hex"));
    const growth = (peak - rss0) / 1024 / 1024;
    const liveGrowth = (livePeak - live0) / 1024 / 1024;
    console.log(`${ext.join(",")}: 50 MB sent, RSS growth ${growth.toFixed(1)} MB, live heap+buffers growth ${liveGrowth.toFixed(1)} MB`);
    if (n === 0) continue;
    assert.ok(growth < 16, `RSS grew ${growth.toFixed(1)} MB`);
    assert.ok(liveGrowth < 8, `live memory grew ${liveGrowth.toFixed(1)} MB`);
  }
});

test("CR/LF or angle brackets in an address never reach the wire: that recipient bounced 5.1.3, a bad sender 5.1.7", async () => {
  const s = await sink();
  const c = await connect(s);
  const out = await c.send(message(MSG, ["ok@r.test", "evil@r.test>\r\nRCPT TO:<victim@r.test", "x@r.test"], { dsn: { notify: new Map([["x@r.test", "NEVER\r\nQUIT"]]) } }));
  assert.deepEqual(out.results.map((r) => [r.kind, r.reply.enhanced]), [["sent", "2.0.0"], ["bounced", "5.1.3"], ["bounced", "5.1.3"]]);
  const bad = await c.send(message(MSG, ["ok@r.test"], { sender: "a@b>\r\nRSET" }));
  assert.deepEqual(bad.results.map((r) => [r.kind, r.reply.enhanced]), [["bounced", "5.1.7"]]);
  await c.quit();
  assert.deepEqual(s.transactions[0]!.rcptLines, ["RCPT TO:<ok@r.test>"]);
  assert.ok(!s.sessions[0]!.commands.some((l) => l.includes("victim")));
  assert.equal(s.sessions[0]!.commands.filter((l) => l.startsWith("MAIL")).length, 1);
});

test("replies: a multi-line greeting, enhanced codes split off; a malformed reply is a temporary protocol error", async () => {
  const multi = await sink({ greeting: "220-sink.test first line\r\n220-second\r\n220 third" });
  const c = await connect(multi);
  await c.quit();
  const mixed = await sink({ greeting: "220-one\r\n250 two" });
  await assert.rejects(connect(mixed), (e: unknown) => e instanceof ClientError && e.code === "protocol" && e.temporary);
  const junk = await sink({ greeting: "hello there" });
  await assert.rejects(connect(junk), (e: unknown) => e instanceof ClientError && e.code === "protocol" && e.temporary);
  const s = await sink({ rcpt: () => "550-5.1.1 first\r\n550-5.1.1 second\r\n550 5.1.1 third" });
  const c2 = await connect(s);
  const out = await c2.send(message(MSG));
  await c2.quit();
  assert.deepEqual(out.results[0]!.reply, { code: 550, enhanced: "5.1.1", lines: ["first", "second", "third"] });
});

test("a connection the peer closed while idle is 'closed': send throws a temporary ClientError, no recipient is marked", async () => {
  const s = await sink();
  const c = await connect(s, { timeouts: { ehlo: 50 } });
  await new Promise((r) => setTimeout(r, 120)); // longer than every timeout set: an idle connection does not time out
  assert.equal(c.currentState, "ready");
  assert.equal((await c.send(message(MSG))).results[0]!.kind, "sent");
  await s.close();
  sinks.splice(sinks.indexOf(s), 1);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(c.currentState, "closed");
  await assert.rejects(c.send(message(MSG)), (e: unknown) => e instanceof ClientError && e.code === "state" && e.temporary);
});
