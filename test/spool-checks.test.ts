// The spool's inbound-check stage in the real server (bin/petrel serve): the Received line names the
// client from forward-confirmed reverse DNS against a loopback DNS server; with PETREL_TEST_CHECK=1 a
// test check drives each verdict: accept (its field between Return-Path and Received, content staged
// and read back whole), junk (the Maildir++ .Junk folder, which POP3 does not serve), reject (550 5.7.1
// at the end of DATA, nothing stored); forged Authentication-Results in our name are removed.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { startDnsServer, type DnsServer } from "./helpers/dns-server.js";
import { RawPop3 } from "./helpers/pop3-client.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { RawSmtp, type RawReply } from "./helpers/smtp-client.js";

async function send(server: TestServer, rcpt: string, body: string, helo = "client.test", from?: string): Promise<RawReply> {
  const c = await RawSmtp.connect(server.smtpPort, "127.0.0.1", from);
  try {
    assert.equal((await c.reply()).code, 220);
    assert.equal((await c.command(`EHLO ${helo}`)).code, 250);
    assert.equal((await c.command("MAIL FROM:<sender@client.test>")).code, 250);
    assert.equal((await c.command(`RCPT TO:<${rcpt}>`)).code, 250);
    assert.equal((await c.command("DATA")).code, 354);
    c.write(body + ".\r\n");
    const final = await c.reply();
    await c.command("QUIT");
    return final;
  } finally {
    c.close();
  }
}

function folder(server: TestServer, user: string, sub: string): string[] {
  const d = path.join(server.dataDir, "mailboxes", "example.test", user, sub);
  return fs.existsSync(d) ? fs.readdirSync(d).map((f) => path.join(d, f)) : [];
}

describe("Received names the client from forward-confirmed reverse DNS", () => {
  let dns: DnsServer;
  let server: TestServer;
  before(async () => {
    dns = await startDnsServer({});
    server = await startTestServer({ dns: `127.0.0.1:${dns.port}`, users: [["bob@example.test", "pw"]] });
  });
  after(async () => {
    await server.stop();
    await dns.close();
  });

  // Each case connects from its own loopback address: reverse DNS answers are kept per IP for 5 minutes.
  const cases: [string, string, Parameters<DnsServer["setZone"]>[0], string][] = [
    ["confirmed", "127.0.0.21", { "21.0.0.127.in-addr.arpa": { PTR: ["Relay.Client.Test."] }, "relay.client.test": { A: ["127.0.0.21"] } }, "Received: from client.test (relay.client.test [127.0.0.21])\n"],
    ["not resolving back", "127.0.0.22", { "22.0.0.127.in-addr.arpa": { PTR: ["liar.test"] }, "liar.test": { A: ["192.0.2.1"] } }, "Received: from client.test (liar.test [127.0.0.22] (may be forged))\n"],
    ["no PTR", "127.0.0.23", {}, "Received: from client.test (unknown [127.0.0.23])\n"],
  ];
  for (const [name, ip, zone, line] of cases) {
    test(`PTR ${name}`, async () => {
      dns.setZone(zone);
      const before = new Set(server.mailbox("bob@example.test"));
      assert.equal((await send(server, "bob@example.test", `Subject: ${name}\r\n\r\nhi\r\n`, "client.test", ip)).code, 250);
      const [file] = server.mailbox("bob@example.test").filter((f) => !before.has(f));
      const text = fs.readFileSync(file!, "latin1");
      assert.equal(text.split("\n")[1] + "\n", line, text);
    });
  }

  test("a HELO with our own host name from loopback is accepted (loopback is exempt from the HELO check)", async () => {
    assert.equal((await send(server, "bob@example.test", "Subject: me\r\n\r\nhi\r\n", "mx.petrel.test")).code, 250);
  });
});

describe("inbound checks in the server (PETREL_TEST_CHECK=1)", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { PETREL_TEST_CHECK: "1" }, users: [["bob@example.test", "pw"]] });
  });
  after(() => server.stop());

  test("accept: the check's field sits between Return-Path and Received; it saw every octet streamed and staged; forged A-R removed", async () => {
    const body = "Authentication-Results: MX.petrel.test; dmarc=pass\r\nSubject: fine\r\n\r\n" + "line of text\r\n".repeat(10000);
    assert.equal((await send(server, "bob@example.test", body)).code, 250);
    const [file] = folder(server, "bob", "new");
    const text = fs.readFileSync(file!, "latin1");
    const stored = "Subject: fine\r\n\r\n" + "line of text\r\n".repeat(10000);
    const size = stored.length;
    assert.match(text, new RegExp(`^Return-Path: <sender@client\\.test>\\nX-Petrel-Test-Check: accept; streamed=${size}; staged=${size}; size=${size}\\nReceived: from client\\.test \\(unknown \\[127\\.0\\.0\\.1\\]\\)\\n`));
    assert.ok(text.endsWith("\n" + stored.replace(/\r\n/g, "\n")));
    assert.ok(!text.includes("dmarc=pass"));
    assert.deepEqual(fs.readdirSync(path.join(server.dataDir, "spool", "staging")), [], "130 KB: staged in a file, removed after commit");
  });

  test("junk: the copy goes to .Junk/new (with maildirfolder); POP3 keeps serving the inbox only", async () => {
    const inbox = folder(server, "bob", "new").length;
    assert.equal((await send(server, "bob@example.test", "Subject: cheap pills [test-junk]\r\n\r\nbuy\r\n")).code, 250);
    const [junk] = folder(server, "bob", ".Junk/new");
    assert.ok(junk);
    assert.match(fs.readFileSync(junk, "latin1"), /^Return-Path: <sender@client\.test>\nX-Petrel-Test-Check: junk; /);
    assert.ok(fs.existsSync(path.join(server.dataDir, "mailboxes", "example.test", "bob", ".Junk", "maildirfolder")));
    assert.equal(folder(server, "bob", "new").length, inbox);
    const { client, greeting } = await RawPop3.open(server.pop3Port!);
    try {
      assert.match(greeting, /^\+OK/);
      assert.match(await client.command("USER bob@example.test"), /^\+OK/);
      assert.match(await client.command("PASS pw"), /^\+OK/);
      const list = await client.multiCommand("LIST");
      assert.equal(list.body.toString("latin1").split("\r\n").filter(Boolean).length, inbox, "only the inbox");
      for (let i = 1; i <= inbox; i++) assert.ok(!(await client.multiCommand(`RETR ${i}`)).body.toString("latin1").includes("[test-junk]"));
      await client.command("QUIT");
    } finally {
      client.socket.destroy();
    }
  });

  test("reject: 550 5.7.1 at the end of DATA, nothing stored anywhere", async () => {
    const before = [...folder(server, "bob", "new"), ...folder(server, "bob", ".Junk/new")].length;
    const final = await send(server, "bob@example.test", "Subject: [test-reject]\r\n\r\nno\r\n");
    assert.equal(final.raw, "550 5.7.1 Message refused by the test check\r\n");
    assert.equal([...folder(server, "bob", "new"), ...folder(server, "bob", ".Junk/new")].length, before);
    assert.deepEqual([...folder(server, "bob", "tmp"), ...folder(server, "bob", ".Junk/tmp")], []);
    const staging = path.join(server.dataDir, "spool", "staging");
    assert.deepEqual(fs.existsSync(staging) ? fs.readdirSync(staging) : [], []);
  });
});

describe("[auth] trusted_networks", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { PETREL_TEST_CHECK: "1" }, users: [["bob@example.test", "pw"]], toml: '[auth]\ntrusted_networks = ["127.0.0.0/8"]\n' });
  });
  after(() => server.stop());

  test("mail from a trusted network is neither checked nor filtered: no check field, its Authentication-Results kept, [test-junk] in the inbox", async () => {
    const body = "Authentication-Results: mx.petrel.test; dkim=pass\r\nSubject: [test-junk]\r\n\r\ntrusted\r\n";
    assert.equal((await send(server, "bob@example.test", body)).code, 250);
    const [file] = folder(server, "bob", "new");
    const text = fs.readFileSync(file!, "latin1");
    assert.ok(!text.includes("X-Petrel-Test-Check"), text);
    assert.ok(text.includes("\nAuthentication-Results: mx.petrel.test; dkim=pass\n"));
    assert.deepEqual(folder(server, "bob", ".Junk/new"), []);
  });
});
