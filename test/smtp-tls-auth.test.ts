// SMTP over TLS with AUTH, end to end over raw sockets (issue 8): STARTTLS (RFC 3207) and what it
// forgets, the plaintext pipelined after it (CVE-2011-0411), implicit TLS on submissions (RFC 8314),
// AUTH PLAIN/LOGIN (RFC 4954) with its replies, failures and lockouts, submission policy (RFC 6409)
// and the Received header. The certificate is made with openssl; the client side is node:tls.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { RawSmtp } from "./helpers/smtp-client.js";
import { makeTestCert } from "./helpers/tls-cert.js";

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const plain = (user: string, password: string) => b64(`\0${user}\0${password}`);

async function greeted(c: RawSmtp, ehlo = true): Promise<RawSmtp> {
  assert.equal((await c.reply()).code, 220);
  if (ehlo) assert.equal((await c.command("EHLO client.test")).code, 250);
  return c;
}

/** Connected, EHLO'd, STARTTLS done and EHLO'd again over TLS. */
async function overTls(port: number): Promise<RawSmtp> {
  const c = await greeted(await RawSmtp.connect(port));
  assert.equal((await c.command("STARTTLS")).raw, "220 2.0.0 Ready to start TLS\r\n");
  await c.startTls();
  assert.equal((await c.command("EHLO client.test")).code, 250);
  return c;
}

async function loggedIn(port: number, implicit = false): Promise<RawSmtp> {
  const c = implicit ? await greeted(await RawSmtp.connectTls(port)) : await overTls(port);
  assert.equal((await c.command(`AUTH PLAIN ${plain("alice@example.test", "secret")}`)).raw, "235 2.7.0 Authentication successful\r\n");
  return c;
}

/** A server with an openssl-made certificate and both submission ports; stop() removes the certificate too. */
async function startTlsServer(toml: string, users: [string, string][]): Promise<TestServer> {
  const certDir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-tls-"));
  const server = await startTestServer({ toml: makeTestCert(certDir).toml + toml, listeners: ["submission", "submissions"], users });
  return {
    ...server,
    async stop(signal) {
      const code = await server.stop(signal);
      fs.rmSync(certDir, { recursive: true, force: true });
      return code;
    },
  };
}

describe("SMTP with TLS and AUTH", () => {
  let server: TestServer;
  before(async () => {
    server = await startTlsServer("[smtp]\nauth_failure_delay = 0.5\nmax_auth_failures = 3\n", [
      ["alice@example.test", "secret"],
      ["bob@example.test", "secret"],
    ]);
    for (const args of [["alias", "add", "sales@example.test", "alice@example.test"], ["list", "add", "team@example.test", "alice@example.test", "bob@example.test"]])
      assert.equal(server.petrel(args).status, 0);
  });
  after(() => server.stop());

  test("before TLS, EHLO offers STARTTLS and no AUTH, and AUTH is refused 538 5.7.11", async () => {
    for (const port of [server.smtpPort, server.port("submission")]) {
      const c = await greeted(await RawSmtp.connect(port), false);
      const ehlo = await c.command("EHLO client.test");
      assert.ok(ehlo.lines.includes("STARTTLS"), ehlo.raw);
      assert.ok(!ehlo.lines.some((l) => l.startsWith("AUTH")), ehlo.raw);
      assert.equal((await c.command(`AUTH PLAIN ${plain("alice@example.test", "secret")}`)).raw, "538 5.7.11 Encryption required for requested authentication mechanism\r\n");
      c.close();
    }
  });

  test("STARTTLS: plaintext pipelined after it is never answered; the session starts over; no second STARTTLS", async () => {
    const c = await greeted(await RawSmtp.connect(server.smtpPort));
    c.write("STARTTLS\r\nNOOP\r\nMAIL FROM:<a@client.test>\r\n");
    assert.equal((await c.reply()).raw, "220 2.0.0 Ready to start TLS\r\n");
    const { unread, socket } = await c.startTls();
    assert.equal(unread, "", "nothing may follow the 220 in plaintext");
    assert.match(socket.getProtocol() ?? "", /^TLSv1\.[23]$/);
    // The first reply over TLS must be the one to this NOOP, not to the plaintext NOOP or MAIL.
    assert.equal((await c.command("NOOP")).raw, "250 2.0.0 Ok\r\n");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(c.pending, "", "a reply to the injected commands arrived");
    assert.equal((await c.command("MAIL FROM:<a@client.test>")).raw, "503 5.5.1 Error: send HELO/EHLO first\r\n");
    const ehlo = await c.command("EHLO client.test");
    assert.ok(!ehlo.lines.includes("STARTTLS"), ehlo.raw);
    assert.ok(ehlo.lines.includes("AUTH PLAIN LOGIN"), ehlo.raw);
    assert.equal((await c.command("STARTTLS")).raw, "554 5.5.1 Error: TLS already active\r\n");
    c.close();
  });

  test("STARTTLS inside a transaction is 503; with an argument 501", async () => {
    const c = await greeted(await RawSmtp.connect(server.smtpPort));
    assert.equal((await c.command("STARTTLS now")).raw, "501 5.5.4 Syntax: STARTTLS\r\n");
    assert.equal((await c.command("MAIL FROM:<a@client.test>")).code, 250);
    assert.equal((await c.command("STARTTLS")).raw, "503 5.5.1 Error: MAIL transaction in progress\r\n");
    c.close();
  });

  test("a handshake that fails (garbage after STARTTLS) closes the connection and is logged", async () => {
    const c = await greeted(await RawSmtp.connect(server.smtpPort));
    assert.equal((await c.command("STARTTLS")).code, 220);
    c.write("this is not a TLS ClientHello\r\n\r\n");
    await c.waitClosed();
    assert.equal(c.pending, "", "no SMTP reply after a failed handshake");
    await server.waitForLog((l) => l.msg === "TLS handshake failed");
  });

  test("TLS below 1.2 is refused", async () => {
    const c = await greeted(await RawSmtp.connect(server.smtpPort));
    assert.equal((await c.command("STARTTLS")).code, 220);
    const raw = (c as unknown as { socket: net.Socket }).socket;
    raw.removeAllListeners("data");
    const old = tls.connect({ socket: raw, rejectUnauthorized: false, minVersion: "TLSv1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" });
    await assert.rejects(
      new Promise<void>((resolve, reject) => {
        old.once("secureConnect", resolve);
        old.once("error", reject);
      }),
    );
    c.close();
  });

  test("AUTH PLAIN and LOGIN succeed over TLS (235 2.7.0); a second AUTH is 503", async () => {
    const c = await overTls(server.smtpPort);
    assert.equal((await c.command("AUTH LOGIN")).raw, `334 ${b64("Username:")}\r\n`);
    assert.equal((await c.command(b64("alice@example.test"))).raw, `334 ${b64("Password:")}\r\n`);
    assert.equal((await c.command(b64("secret"))).raw, "235 2.7.0 Authentication successful\r\n");
    assert.equal((await c.command(`AUTH PLAIN ${plain("alice@example.test", "secret")}`)).raw, "503 5.5.1 Error: already authenticated\r\n");
    const ehlo = await c.command("EHLO client.test");
    assert.ok(!ehlo.lines.some((l) => l.startsWith("AUTH")), "AUTH is not offered once authenticated");
    c.close();
    const d = await overTls(server.port("submission"));
    assert.equal((await d.command("AUTH PLAIN")).raw, "334 \r\n");
    assert.equal((await d.command(plain("bob@example.test", "secret"))).raw, "235 2.7.0 Authentication successful\r\n");
    d.close();
  });

  test("AUTH: * cancels with 501 5.0.0, malformed base64 is 501 5.5.2, an unknown mechanism 504, AUTH before EHLO 503", async () => {
    const c = await overTls(server.smtpPort);
    assert.equal((await c.command("AUTH LOGIN")).code, 334);
    assert.equal((await c.command("*")).raw, "501 5.0.0 Authentication cancelled\r\n");
    assert.equal((await c.command("AUTH PLAIN not*base64")).code, 501);
    assert.equal((await c.command("AUTH PLAIN")).code, 334);
    const bad = await c.command("YWxp Y2U=");
    assert.equal(bad.code, 501);
    assert.match(bad.raw, /^501 5\.5\.2 /);
    assert.match((await c.command("AUTH CRAM-MD5")).raw, /^504 5\.5\.4 /);
    c.close();
    const d = await greeted(await RawSmtp.connectTls(server.port("submissions")), false);
    assert.equal((await d.command(`AUTH PLAIN ${plain("alice@example.test", "secret")}`)).raw, "503 5.5.1 Error: send EHLO first\r\n");
    d.close();
  });

  test("a wrong password and an unknown user get the same 535 5.7.8 after about the same time; the third failure ends the session", async () => {
    const c = await overTls(server.smtpPort);
    const timed = async (user: string) => {
      const t0 = performance.now();
      const r = await c.command(`AUTH PLAIN ${plain(user, "pw-Tr0ub4dor-x")}`);
      return { raw: r.raw, ms: performance.now() - t0 };
    };
    const wrong = await timed("alice@example.test");
    const unknown = await timed("nobody@example.test");
    assert.equal(wrong.raw, "535 5.7.8 Error: authentication failed\r\n");
    assert.equal(unknown.raw, wrong.raw);
    assert.ok(wrong.ms >= 490 && unknown.ms >= 490, `failures are delayed: ${wrong.ms} / ${unknown.ms} ms`);
    assert.ok(Math.abs(wrong.ms - unknown.ms) < 150, `timing differs: ${wrong.ms} vs ${unknown.ms} ms`);
    assert.equal((await c.command(`AUTH PLAIN ${plain("alice@example.test", "pw-Tr0ub4dor-x")}`)).raw, "535 5.7.8 Error: authentication failed\r\n");
    const closing = await c.reply();
    assert.equal(closing.raw, "421 4.7.0 mx.petrel.test Error: too many failed logins, closing connection\r\n");
    await c.waitClosed();
    assert.ok(!server.logs().includes("pw-Tr0ub4dor-x"), "a password reached the log");
    assert.ok(!server.logs().includes(plain("alice@example.test", "pw-Tr0ub4dor-x")), "a SASL response reached the log");
  });

  test("port 25 without AUTH reaches only local recipients, with or without TLS", async () => {
    for (const c of [await greeted(await RawSmtp.connect(server.smtpPort)), await overTls(server.smtpPort)]) {
      assert.equal((await c.command("MAIL FROM:<x@client.test>")).code, 250);
      assert.equal((await c.command("RCPT TO:<someone@elsewhere.test>")).raw, "554 5.7.1 <someone@elsewhere.test>: Relay access denied\r\n");
      assert.equal((await c.command("RCPT TO:<alice@example.test>")).code, 250);
      c.close();
    }
  });

  test("submission ports: MAIL without AUTH is 530 5.7.0, on 587 with TLS and on 465", async () => {
    const c = await overTls(server.port("submission"));
    assert.equal((await c.command("MAIL FROM:<alice@example.test>")).raw, "530 5.7.0 Authentication required\r\n");
    c.close();
    const d = await greeted(await RawSmtp.connectTls(server.port("submissions")));
    assert.equal((await d.command("MAIL FROM:<alice@example.test>")).raw, "530 5.7.0 Authentication required\r\n");
    d.close();
  });

  test("an authenticated user cannot send as someone else (553 5.7.1)", async () => {
    const c = await loggedIn(server.port("submission"));
    assert.equal((await c.command("MAIL FROM:<bob@example.test>")).raw, "553 5.7.1 <bob@example.test>: Sender address rejected: not owned by user alice@example.test\r\n");
    assert.equal((await c.command("MAIL FROM:<ceo@bank.example>")).code, 553);
    assert.equal((await c.command("MAIL FROM:<team@example.test>")).code, 553, "a member may not send as the list");
    assert.equal((await c.command("MAIL FROM:<Alice@Example.Test>")).code, 250);
    assert.equal((await c.command("RSET")).code, 250);
    assert.equal((await c.command("MAIL FROM:<sales@example.test>")).code, 250, "an alias that reaches the user is theirs");
    assert.equal((await c.command("RSET")).code, 250);
    assert.equal((await c.command("MAIL FROM:<>")).code, 250, "the null sender impersonates no one");
    c.close();
  });

  test("authenticated mail to a remote address is queued durably; the local copy says ESMTPSA and the TLS cipher", async () => {
    const c = await loggedIn(server.port("submissions"), true);
    assert.equal((await c.command("MAIL FROM:<alice@example.test>")).code, 250);
    assert.equal((await c.command("RCPT TO:<friend@remote.test>")).raw, "250 2.1.5 Ok\r\n");
    assert.equal((await c.command("RCPT TO:<bob@example.test>")).code, 250);
    assert.equal((await c.command("DATA")).code, 354);
    c.write("Subject: submitted over 465\r\n\r\nhello\r\n.\r\n");
    const done = await c.reply();
    assert.match(done.raw, /^250 2\.0\.0 Ok: queued as (\w+)\r\n$/);
    const id = /queued as (\w+)/.exec(done.raw)![1]!;
    c.close();
    const queued = fs.readdirSync(path.join(server.dataDir, "queue"), { recursive: true }).map(String);
    assert.ok(queued.some((f) => f.includes(id)), `queue has ${queued.join(", ")}`);
    const copy = server.mailbox("bob@example.test").map((f) => fs.readFileSync(f, "utf8")).find((t) => t.includes("submitted over 465"));
    assert.ok(copy);
    assert.match(copy, /\n\t\(using TLSv1\.3 with cipher TLS_\w+ \(\d+\/\d+ bits\)\)\r?\n/);
    assert.match(copy, / with ESMTPSA id /);
    assert.ok(!copy.includes("Authenticated sender"), "the user is not named by default");
    // RFC 6409 §8: the submitted message lacked Date and Message-ID; they end its header section.
    assert.match(copy, new RegExp(`\nSubject: submitted over 465\r?\nDate: \\w{3}, \\d{1,2} \\w{3} \\d{4} \\d\\d:\\d\\d:\\d\\d [+-]\\d{4}\r?\nMessage-ID: <${id}\\.[0-9a-f]+@mx\\.petrel\\.test>\r?\n\r?\nhello`));
    const queuedCopy = fs.readFileSync(path.join(server.dataDir, "queue", queued.find((f) => f.includes(id) && !f.endsWith(".json"))!), "utf8");
    assert.match(queuedCopy, /\nMessage-ID: </, "the queued copy has them too");
  });

  test("mail received over STARTTLS without AUTH says ESMTPS", async () => {
    const c = await overTls(server.smtpPort);
    assert.equal((await c.command("MAIL FROM:<x@client.test>")).code, 250);
    assert.equal((await c.command("RCPT TO:<alice@example.test>")).code, 250);
    assert.equal((await c.command("DATA")).code, 354);
    c.write("Subject: esmtps\r\n\r\nhello\r\n.\r\n");
    assert.equal((await c.reply()).code, 250);
    c.close();
    const copy = server.mailbox("alice@example.test").map((f) => fs.readFileSync(f, "utf8")).find((t) => t.includes("Subject: esmtps"));
    assert.match(copy ?? "", / with ESMTPS id /);
    assert.doesNotMatch(copy ?? "", /\n(Date|Message-ID):/i, "relayed mail is stored as it came");
  });
});

describe("connection limits, lockout and handshake timeout", () => {
  let server: TestServer;
  before(async () => {
    server = await startTlsServer(
      [
        "[limits]",
        "max_connections_per_ip = 3",
        "per_ip_exceptions = []",
        "tls_handshake_timeout = 1",
        "auth_failures_per_ip = 4",
        "[smtp]",
        "auth_failure_delay = 0",
        "max_auth_failures = 10",
        "[submission]",
        "received_auth_user = true",
        "",
      ].join("\n"),
      [["alice@example.test", "secret"]],
    );
  });
  after(() => server.stop());

  test("the Received header names the authenticated user when submission.received_auth_user is on", async () => {
    const c = await loggedIn(server.port("submission"));
    assert.equal((await c.command("MAIL FROM:<alice@example.test>")).code, 250);
    assert.equal((await c.command("RCPT TO:<alice@example.test>")).code, 250);
    assert.equal((await c.command("DATA")).code, 354);
    c.write("Subject: named\r\n\r\nhello\r\n.\r\n");
    assert.equal((await c.reply()).code, 250);
    c.close();
    const copy = server.mailbox("alice@example.test").map((f) => fs.readFileSync(f, "utf8")).find((t) => t.includes("Subject: named"));
    assert.match(copy ?? "", /\n\t\(Authenticated sender: alice@example\.test\)\r?\n\tby mx\.petrel\.test \(Petrel\) with ESMTPSA id /);
  });

  test("a fourth connection from one address gets 421 4.7.0; a freed slot is usable again", async () => {
    const held = [await RawSmtp.connect(server.smtpPort), await RawSmtp.connect(server.smtpPort), await RawSmtp.connect(server.smtpPort)];
    for (const c of held) assert.equal((await c.reply()).code, 220);
    const fourth = await RawSmtp.connect(server.smtpPort);
    assert.equal((await fourth.reply()).raw, "421 4.7.0 mx.petrel.test Error: too many connections from your address, try again later\r\n");
    await fourth.waitClosed();
    // Another listener counts its own connections.
    const other = await greeted(await RawSmtp.connect(server.port("submission")), false);
    other.close();
    held[0]!.close();
    await new Promise((r) => setTimeout(r, 200));
    const again = await RawSmtp.connect(server.smtpPort);
    assert.equal((await again.reply()).code, 220);
    again.close();
    for (const c of held) c.close();
    await new Promise((r) => setTimeout(r, 200));
  });

  test("a client that never finishes its handshake is cut after tls_handshake_timeout, on 465 and after STARTTLS", async () => {
    const t0 = Date.now();
    const silent = net.connect(server.port("submissions"), "127.0.0.1");
    silent.on("error", () => undefined);
    await new Promise<void>((resolve) => silent.once("close", () => resolve()));
    const waited = Date.now() - t0;
    assert.ok(waited >= 900 && waited < 4000, `closed after ${waited} ms`);
    const c = await greeted(await RawSmtp.connect(server.smtpPort));
    assert.equal((await c.command("STARTTLS")).code, 220);
    await c.waitClosed(4000);
  });

  test("after auth_failures_per_ip failures the address is refused even with the right password (421 4.7.0)", async () => {
    const c = await overTls(server.smtpPort);
    for (let i = 0; i < 4; i++) assert.equal((await c.command(`AUTH PLAIN ${plain("alice@example.test", `guess${i}`)}`)).code, 535);
    assert.equal((await c.command(`AUTH PLAIN ${plain("alice@example.test", "secret")}`)).raw, "421 4.7.0 mx.petrel.test Error: too many failed logins, try again later\r\n");
    await c.waitClosed();
    const d = await overTls(server.port("submission"));
    assert.equal((await d.command(`AUTH PLAIN ${plain("alice@example.test", "secret")}`)).code, 421);
    d.close();
  });
});
