// End-to-end: DNSBL/DNSWL at connect and greylisting at RCPT on the real `petrel serve`, with the loopback DNS
// server as the lists. Clients connect from different loopback addresses (127.0.0.2 is RFC 5782's test
// entry) so one server sees listed, allowlisted and clean clients. Python's smtplib plays a real MTA that
// meets a 554 greeting and a greylisting 450, waits and retries.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startDnsServer, type DnsServer } from "./helpers/dns-server.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { RawSmtp } from "./helpers/smtp-client.js";
import { requireTool, runTool } from "./helpers/tools.js";

const USERS = [["alice@example.test", "alice-password"]] as const;

async function python<T>(script: string, ...args: string[]): Promise<T> {
  const r = await runTool("python3", ["-c", script, ...args]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

/** Connects from localAddress, expects 220, says EHLO (then `login`, expecting 235), MAIL; returns RCPT's reply to alice. */
async function rcptFrom(server: TestServer, localAddress: string, from: string, login?: string): Promise<string> {
  const c = await RawSmtp.connect(server.smtpPort, "127.0.0.1", localAddress);
  try {
    assert.equal((await c.reply()).code, 220);
    assert.equal((await c.command("EHLO client.test")).code, 250);
    if (login) assert.equal((await c.command(login)).code, 235);
    assert.equal((await c.command(`MAIL FROM:<${from}>`)).code, 250);
    const r = await c.command("RCPT TO:<alice@example.test>");
    await c.command("QUIT");
    return r.raw;
  } finally {
    c.close();
  }
}

describe("DNSBL, DNSWL and greylisting on port 25", () => {
  let dns: DnsServer;
  let server: TestServer;
  before(async () => {
    dns = await startDnsServer({
      "2.0.0.127.bl.test": { A: ["127.0.0.2"], TXT: ["Listed for testing, see https://bl.test/lookup"] },
      "3.0.0.127.bl.test": { A: ["127.0.0.2"] },
      "3.0.0.127.wl.test": { A: ["127.0.10.2"] },
      "4.0.0.127.bl.test": { A: ["127.0.0.2"], delayMs: 3000 },
    });
    server = await startTestServer({
      users: USERS,
      dns: `127.0.0.1:${dns.port}`,
      toml: [
        "[smtp]",
        'auth_without_tls = "loopback"',
        "auth_failure_delay = 0",
        "[spam]",
        'dnsbl = ["bl.test"]',
        'dnswl = ["wl.test"]',
        "dnsbl_timeout = 0.5",
        "exempt_networks = []",
        "greylisting = true",
        'greylist_delay = "1s"',
      ].join("\n"),
    });
  });
  after(async () => {
    await server?.stop();
    await dns?.close();
  });

  test("a listed client gets 554 5.7.1 with the list's reason instead of 220; QUIT gets 221, anything else 503", async () => {
    const c = await RawSmtp.connect(server.smtpPort, "127.0.0.1", "127.0.0.2");
    try {
      const greeting = await c.reply();
      assert.equal(greeting.raw, "554 5.7.1 Service unavailable; client [127.0.0.2] blocked using bl.test; Listed for testing, see https://bl.test/lookup\r\n");
      assert.equal((await c.command("EHLO spammer.test")).raw, "503 5.5.1 Error: service unavailable; send QUIT\r\n");
      assert.equal((await c.command("QUIT")).raw, "221 2.0.0 Bye\r\n");
      await c.waitClosed();
    } finally {
      c.close();
    }
    const line = await server.waitForLog((l) => l.msg === "connection refused" && l.peer === "127.0.0.2");
    assert.equal(line.reason, "listed in bl.test");
  });

  test("a listed client that keeps talking is disconnected after a few lines", async () => {
    const c = await RawSmtp.connect(server.smtpPort, "127.0.0.1", "127.0.0.2");
    try {
      assert.equal((await c.reply()).code, 554);
      c.write("EHLO a\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
      for (let i = 0; i < 3; i++) assert.equal((await c.reply()).code, 503);
      await c.waitClosed();
      assert.equal(c.pending, "");
    } finally {
      c.close();
    }
  });

  test("python smtplib sees the 554 as a refused connection", async (t) => {
    if (!requireTool(t, "python3")) return;
    const r = await python<{ code: number; msg: string }>(
      `
import json, smtplib, sys
try:
    smtplib.SMTP("127.0.0.1", int(sys.argv[1]), source_address=("127.0.0.2", 0), timeout=10)
    print(json.dumps({"code": 220, "msg": ""}))
except smtplib.SMTPConnectError as e:
    print(json.dumps({"code": e.smtp_code, "msg": e.smtp_error.decode()}))
`,
      String(server.smtpPort),
    );
    assert.deepEqual(r, { code: 554, msg: "5.7.1 Service unavailable; client [127.0.0.2] blocked using bl.test; Listed for testing, see https://bl.test/lookup" });
  });

  test("an unlisted client is greeted (NXDOMAIN), a list that times out does not block", async () => {
    const clean = await RawSmtp.connect(server.smtpPort, "127.0.0.1", "127.0.0.1");
    try {
      assert.equal((await clean.reply()).raw, "220 mx.petrel.test ESMTP Petrel\r\n");
    } finally {
      clean.close();
    }
    const started = Date.now();
    const slow = await RawSmtp.connect(server.smtpPort, "127.0.0.1", "127.0.0.4");
    try {
      assert.equal((await slow.reply()).raw, "220 mx.petrel.test ESMTP Petrel\r\n");
      const took = Date.now() - started;
      assert.ok(took >= 400 && took < 2500, `greeted after ${took} ms`);
    } finally {
      slow.close();
    }
    const line = await server.waitForLog((l) => l.msg === "DNS list lookup failed: client not treated as listed" && l.peer === "127.0.0.4");
    assert.equal(line.reason, "timeout");
  });

  test("greylisting: first try 450 4.7.1, a retry after the delay is delivered (python smtplib as the retrying MTA)", async (t) => {
    if (!requireTool(t, "python3")) return;
    const before = server.mailbox("alice@example.test").length;
    const r = await python<{ first: [number, string]; second: Record<string, unknown> }>(
      `
import json, smtplib, sys, time
msg = "From: mta@sender.test\\r\\nTo: alice@example.test\\r\\nSubject: greylisted\\r\\n\\r\\nhello\\r\\n"
def send():
    s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="mta.sender.test", timeout=10)
    try:
        return s.sendmail("mta@sender.test", ["alice@example.test"], msg)
    finally:
        s.quit()
try:
    send()
    first = [250, ""]
except smtplib.SMTPRecipientsRefused as e:
    code, text = e.recipients["alice@example.test"]
    first = [code, text.decode()]
time.sleep(1.2)
second = send()
print(json.dumps({"first": first, "second": second}))
`,
      String(server.smtpPort),
    );
    assert.deepEqual(r.first, [450, "4.7.1 Greylisted, try again in 1 seconds"]);
    assert.deepEqual(r.second, {});
    assert.equal(server.mailbox("alice@example.test").length, before + 1);
    await server.waitForLog((l) => l.msg === "greylisting passed after retry" && l.from === "mta@sender.test");
  });

  test("greylisting asks only for recipients that exist: an unknown one still gets 550", async () => {
    const c = await RawSmtp.connect(server.smtpPort, "127.0.0.1", "127.0.0.5");
    try {
      await c.reply();
      await c.command("EHLO other.test");
      assert.equal((await c.command("MAIL FROM:<x@other.test>")).code, 250);
      assert.equal((await c.command("RCPT TO:<nobody@example.test>")).code, 550);
      assert.equal((await c.command("RCPT TO:<alice@example.test>")).raw, "450 4.7.1 Greylisted, try again in 1 seconds\r\n");
      assert.equal((await c.command("DATA")).code, 554);
      await c.command("QUIT");
    } finally {
      c.close();
    }
  });

  test("a client on the DNSWL skips the DNSBL and greylisting", async () => {
    assert.equal(await rcptFrom(server, "127.0.0.3", "y@trusted.test"), "250 2.1.5 Ok\r\n");
  });

  test("an authenticated client is not greylisted", async () => {
    const plain = Buffer.from("\0alice@example.test\0alice-password").toString("base64");
    assert.equal(await rcptFrom(server, "127.0.0.6", "alice@example.test", `AUTH PLAIN ${plain}`), "250 2.1.5 Ok\r\n");
  });
});

describe("DNSBL with a greet pause", () => {
  let dns: DnsServer;
  let server: TestServer;
  before(async () => {
    dns = await startDnsServer({ "2.0.0.127.bl.test": { A: ["127.0.0.2"], TXT: ["go away"] } });
    server = await startTestServer({
      dns: `127.0.0.1:${dns.port}`,
      toml: ["[smtp]", "greet_pause = 0.2", "[spam]", 'dnsbl = ["bl.test"]', "exempt_networks = []"].join("\n"),
    });
  });
  after(async () => {
    await server?.stop();
    await dns?.close();
  });

  test("the greeting begun with 220- ends in 220; every command then gets the 554, QUIT 221", async () => {
    const c = await RawSmtp.connect(server.smtpPort, "127.0.0.1", "127.0.0.2");
    try {
      assert.equal((await c.reply()).raw, "220-mx.petrel.test ESMTP Petrel\r\n220 mx.petrel.test ESMTP Petrel\r\n");
      const refusal = "554 5.7.1 Service unavailable; client [127.0.0.2] blocked using bl.test; go away\r\n";
      assert.equal((await c.command("EHLO spammer.test")).raw, refusal);
      assert.equal((await c.command("MAIL FROM:<a@spammer.test>")).raw, refusal);
      assert.equal((await c.command("QUIT")).raw, "221 2.0.0 Bye\r\n");
      await c.waitClosed();
    } finally {
      c.close();
    }
  });
});

describe("exempt networks (default: loopback)", () => {
  let dns: DnsServer;
  let server: TestServer;
  before(async () => {
    dns = await startDnsServer({ "2.0.0.127.bl.test": { A: ["127.0.0.2"] } });
    server = await startTestServer({
      users: USERS,
      dns: `127.0.0.1:${dns.port}`,
      toml: ["[spam]", 'dnsbl = ["bl.test"]', "greylisting = true"].join("\n"),
    });
  });
  after(async () => {
    await server?.stop();
    await dns?.close();
  });

  test("a loopback client listed in the DNSBL is neither looked up, refused nor greylisted", async () => {
    assert.equal(await rcptFrom(server, "127.0.0.2", "z@local.test"), "250 2.1.5 Ok\r\n");
    assert.deepEqual(dns.queries.filter((q) => q.name.endsWith("bl.test")), []);
  });
});
