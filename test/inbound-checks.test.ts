// Issue 10's "done when" through the real server (bin/petrel serve, checks on as in production) with a
// loopback DNS server: a forged message claiming a DMARC p=reject domain is refused 550 5.7.1 and
// nothing is stored; honest mail is stored with Authentication-Results and Received-SPF in our name,
// forged ones and forged X-Spam-* verdicts removed; the built-in Bayes filter, trained with `petrel spam
// train` while the server runs, sends GTUBE spam to the Junk folder and ham to the inbox; a real rspamd
// (Debian package) refuses GTUBE.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startDnsServer, type DnsServer } from "./helpers/dns-server.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { RawSmtp, type RawReply } from "./helpers/smtp-client.js";
import { GTUBE, hamMessage, spamMessage } from "../src/testing/spam-fixtures.js";
import { rspamdInstalled, startRspamd, type RspamdServer } from "../src/testing/rspamd-server.js";

async function send(server: TestServer, from: string, content: string): Promise<RawReply> {
  const c = await RawSmtp.connect(server.smtpPort);
  try {
    assert.equal((await c.reply()).code, 220);
    assert.equal((await c.command("EHLO mail.friendly.test")).code, 250);
    assert.equal((await c.command(`MAIL FROM:<${from}>`)).code, 250);
    assert.equal((await c.command("RCPT TO:<bob@example.test>")).code, 250);
    assert.equal((await c.command("DATA")).code, 354);
    c.write(content.replace(/\r?\n/g, "\r\n").replace(/\r\n\./g, "\r\n..") + ".\r\n");
    return await c.reply(15_000);
  } finally {
    c.close();
  }
}

function stored(server: TestServer, sub: "new" | ".Junk/new"): string[] {
  const d = path.join(server.dataDir, "mailboxes", "example.test", "bob", sub);
  return fs.existsSync(d) ? fs.readdirSync(d).map((f) => fs.readFileSync(path.join(d, f), "latin1")) : [];
}

const ZONE = {
  "bank.test": { TXT: ["v=spf1 ip4:192.0.2.1 -all"] },
  "_dmarc.bank.test": { TXT: ["v=DMARC1; p=reject"] },
  "friendly.test": { TXT: ["v=spf1 ip4:127.0.0.1 -all"] },
  "_dmarc.friendly.test": { TXT: ["v=DMARC1; p=none"] },
  "mail.friendly.test": { A: ["127.0.0.1"], TXT: ["v=spf1 a -all"] },
};

describe("inbound checks in a real server: DMARC, headers, Bayes", () => {
  let dns: DnsServer;
  let server: TestServer;
  before(async () => {
    dns = await startDnsServer(ZONE);
    server = await startTestServer({ checks: true, dns: `127.0.0.1:${dns.port}`, users: [["bob@example.test", "pw"]], toml: "[spam]\nbayes_min_trained = 10\n" });
  });
  after(async () => {
    await server.stop();
    await dns.close();
  });

  test("a forged From: of a p=reject domain is refused 550 5.7.1 at the end of DATA; nothing is stored", async () => {
    const before = stored(server, "new").length;
    const r = await send(server, "ceo@bank.test", "From: The Bank <ceo@bank.test>\nSubject: verify your account\n\nclick here\n");
    assert.equal(r.code, 550, r.raw);
    assert.match(r.raw, /^550 5\.7\.1 .*bank\.test.*p=reject/);
    assert.equal(stored(server, "new").length, before);
  });

  test("honest mail gets Authentication-Results and Received-SPF in our name; forged ones and X-Spam verdicts are removed", async () => {
    const r = await send(
      server,
      "alice@friendly.test",
      "Authentication-Results: mx.petrel.test; dkim=pass header.d=bank.test\nX-Spam-Status: No, score=-100\nFrom: Alice <alice@friendly.test>\nSubject: lunch\n\nsee you at noon\n",
    );
    assert.equal(r.code, 250, r.raw);
    const copy = stored(server, "new").find((t) => t.includes("Subject: lunch"))!;
    const head = copy.slice(0, copy.indexOf("\n\n"));
    assert.match(head, /^Return-Path: <alice@friendly\.test>\nAuthentication-Results: mx\.petrel\.test; spf=pass\n smtp\.mailfrom=alice@friendly\.test;/);
    assert.match(head, /dmarc=pass \(p=none\)\s+header\.from=friendly\.test/);
    assert.match(head, /\nReceived-SPF: pass \(mx\.petrel\.test: domain friendly\.test designates 127\.0\.0\.1/);
    assert.equal(head.match(/^Authentication-Results:/gm)!.length, 1, "the forged claim in our name is gone");
    assert.doesNotMatch(head, /dkim=pass header\.d=bank\.test/);
    assert.doesNotMatch(head, /score=-100/);
    assert.match(head, /\nX-Spam-Status: Unknown, engine=bayes \(untrained\)\n/);
  });

  test("the Bayes filter trained with `petrel spam train` sends GTUBE spam to .Junk and ham to the inbox", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-train-"));
    try {
      for (const [kind, make] of [["spam", spamMessage], ["ham", hamMessage]] as const) {
        fs.mkdirSync(path.join(dir, kind));
        for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(dir, kind, `${i}.eml`), make(i));
        const t = server.petrel(["spam", "train", `--${kind}`, path.join(dir, kind)]);
        assert.equal(t.status, 0, t.stderr);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const spam = await send(server, "alice@friendly.test", `From: alice@friendly.test\nSubject: cheap pills, act now\n\n${GTUBE}\nbuy cheap pills now, limited offer, click here\n`);
    assert.equal(spam.code, 250, spam.raw);
    const junk = stored(server, ".Junk/new").find((t) => t.includes("Subject: cheap pills"));
    assert.ok(junk, "the spam is in .Junk/new");
    assert.match(junk, /\nX-Spam-Status: Yes, score=[\d.]+ required=[\d.]+ engine=bayes class=spam\n/);
    const ham = await send(server, "alice@friendly.test", hamMessage(99).replace(/\r\n/g, "\n"));
    assert.equal(ham.code, 250, ham.raw);
    assert.ok(
      stored(server, "new").some((t) => /\nX-Spam-Status: No, score=[\d.]+ required=[\d.]+ engine=bayes class=ham\n/.test(t)),
      "the ham is in the inbox, tagged No",
    );
  });
});

describe("a real rspamd behind the server", { skip: !rspamdInstalled() && "rspamd is not installed" }, () => {
  let rspamd: RspamdServer;
  let dns: DnsServer;
  let server: TestServer;
  before(async () => {
    rspamd = await startRspamd();
    dns = await startDnsServer(ZONE);
    server = await startTestServer({ checks: true, dns: `127.0.0.1:${dns.port}`, users: [["bob@example.test", "pw"]], toml: `[spam]\nrspamd = "${rspamd.url}"\nbayes = false\n` });
  });
  after(async () => {
    await server.stop();
    await rspamd.stop();
    await dns.close();
  });

  test("GTUBE is refused 550 5.7.1; an ordinary message is stored with rspamd's verdict", async () => {
    const r = await send(server, "alice@friendly.test", `From: alice@friendly.test\nSubject: test\n\n${GTUBE}\n`);
    assert.equal(r.code, 550, r.raw);
    assert.match(r.raw, /^550 5\.7\.1 /);
    const ok = await send(server, "alice@friendly.test", "From: alice@friendly.test\nSubject: minutes\n\nThe minutes of today's meeting are attached below.\n");
    assert.equal(ok.code, 250, ok.raw);
    const copy = stored(server, "new").find((t) => t.includes("Subject: minutes"))!;
    assert.match(copy, /\nX-Spam-Status: No, score=-?[\d.]+ required=[\d.]+ engine=rspamd\n/);
  });
});
