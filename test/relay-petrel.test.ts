// The relay against a second Petrel (issue 9): as the remote MX (opportunistic STARTTLS: its Received
// says ESMTPS) and as an AUTH-requiring smarthost on its submission port (STARTTLS + AUTH PLAIN with
// the password from smarthost_password_file: ESMTPSA). And a deferred message survives SIGKILL: after
// the restart it is delivered exactly once.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { startDnsServer } from "./helpers/dns-server.js";
import { eventually, submit } from "./helpers/relay.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { SmtpSink } from "../src/testing/smtp-sink.js";




const copyWith = (server: TestServer, address: string, subject: string) =>
  server
    .mailbox(address)
    .map((f) => fs.readFileSync(f, "utf8"))
    .find((t) => t.includes(`Subject: ${subject}`));

describe("a second Petrel as the remote MX and as a smarthost", () => {
  let dns: Awaited<ReturnType<typeof startDnsServer>>;
  let remote: TestServer;
  before(async () => {
    remote = await startTestServer({
      hostname: "mx.far.test",
      domains: ["far.test"],
      listeners: ["submission"],
      users: [["bob@far.test", "bob-pw"], ["relay@far.test", "relay-pw"]],
      // A smarthost lets its relay user send as any address (providers rewrite or check on their side).
      toml: "[submission]\nreceived_auth_user = true\nsender_check = false\n",
    });
    dns = await startDnsServer({ "far.test": { MX: [[10, "mx.far.test"]] }, "mx.far.test": { A: ["127.0.0.1"] } });
  });
  after(async () => {
    await remote.stop();
    await dns.close();
  });

  test("MX delivery uses the remote Petrel's STARTTLS: its Received says ESMTPS from us", async (t) => {
    const local = await startTestServer({
      dns: `127.0.0.1:${dns.port}`,
      toml: `[smtp]\nauth_without_tls = "loopback"\n[delivery]\nmx_port = ${remote.smtpPort}\n`,
      users: [["alice@example.test", "pw"]],
    });
    t.after(() => local.stop());
    const id = await submit(local, ["bob@far.test"], "over opportunistic TLS");
    const copy = await eventually("bob's copy", () => copyWith(remote, "bob@far.test", "over opportunistic TLS"));
    assert.match(copy, /^Return-Path: <alice@example\.test>\nReceived: from mx\.petrel\.test \(unknown \[127\.0\.0\.1\]\)\n\t\(using TLSv1\.3 with cipher \S+ \(\d+\/\d+ bits\)\)\n\tby mx\.far\.test \(Petrel\) with ESMTPS id /);
    assert.match(copy, new RegExp(`\\n\\tby mx\\.petrel\\.test \\(Petrel\\) with ESMTPA id ${id}\\n`), "our own Received line travels with it");
    const line = await eventually("the delivery line", () => local.logLines().find((l) => l.msg === "delivery" && l.id === id));
    assert.equal(line.status, "sent");
  });

  test("a smarthost on a submission port with STARTTLS and AUTH (password from a file): ESMTPSA there", async (t) => {
    const pwFile = path.join(remote.dir, "smarthost-password");
    fs.writeFileSync(pwFile, "relay-pw\n", { mode: 0o600 });
    const local = await startTestServer({
      toml: [
        "[smtp]",
        'auth_without_tls = "loopback"',
        "[delivery]",
        `smarthost = "127.0.0.1:${remote.port("submission")}"`,
        'smarthost_security = "starttls"',
        'smarthost_username = "relay@far.test"',
        `smarthost_password_file = ${JSON.stringify(pwFile)}`,
        "smarthost_verify = false",
        "",
      ].join("\n"),
      users: [["alice@example.test", "pw"]],
    });
    t.after(() => local.stop());
    await submit(local, ["bob@far.test"], "through the smarthost");
    const copy = await eventually("bob's copy", () => copyWith(remote, "bob@far.test", "through the smarthost"));
    assert.match(copy, /\n\t\(Authenticated sender: relay@far\.test\)\n\tby mx\.far\.test \(Petrel\) with ESMTPSA id /);
    assert.ok(!local.logs().includes("relay-pw"), "the smarthost password is never logged");
  });
});

describe("SIGKILL with a deferred message", () => {
  test("after the restart the message is delivered exactly once", async () => {
    let accept = false;
    const sink = await SmtpSink.start({ rcpt: () => (accept ? "250 2.1.5 Ok" : "451 4.3.0 not yet") }, "127.0.0.2");
    const dns = await startDnsServer({ "far.test": { MX: [[10, "mx.far.test"]] }, "mx.far.test": { A: ["127.0.0.2"] } });
    const toml = `[smtp]\nauth_without_tls = "loopback"\n[delivery]\nmx_port = ${sink.port}\nretry_schedule = [1]\nqueue_run_interval = 1\n`;
    const first = await startTestServer({ dns: `127.0.0.1:${dns.port}`, toml, users: [["alice@example.test", "pw"]], keepDir: true });
    try {
      const id = await submit(first, ["ops@far.test"], "survives a kill");
      await eventually("a deferral", () => first.logLines().find((l) => l.msg === "delivery" && l.id === id && l.status === "deferred"));
      await first.stop("SIGKILL");
      accept = true;
      const again = await startTestServer({ dir: first.dir, keepDir: true });
      try {
        await eventually("the delivery after restart", () => again.logLines().find((l) => l.msg === "delivery" && l.id === id && l.status === "sent"));
        await new Promise((r) => setTimeout(r, 1500));
        const copies = sink.transactions.filter((tx) => tx.body?.toString().includes("Subject: survives a kill"));
        assert.equal(copies.length, 1, "delivered exactly once");
        assert.equal(fs.existsSync(path.join(first.dataDir, "queue", "envelopes", `${id}.json`)), false, "the entry is gone");
      } finally {
        await again.stop();
      }
    } finally {
      fs.rmSync(first.dir, { recursive: true, force: true });
      await sink.close();
      await dns.close();
    }
  });
});
