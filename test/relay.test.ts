// The relay end to end (issue 9): `petrel serve` delivers queued mail to other domains by MX routing
// through a loopback DNS server to scriptable SMTP sinks on 127.0.0.2, retries what was deferred,
// bounces what failed (a readable RFC 3464 report in the sender's Maildir), honours ETRN and
// `petrel queue flush`, and takes `petrel sendmail`'s drops even when they were made while it was down.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { startDnsServer } from "./helpers/dns-server.js";
import { eventually, startRelayWorld, submit, type RelayWorld } from "./helpers/relay.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { RawSmtp } from "./helpers/smtp-client.js";
import { SmtpSink } from "../src/testing/smtp-sink.js";



/** Submits a message over plain SMTP on loopback with AUTH (smtp.auth_without_tls = "loopback"). */

describe("relay by MX", () => {
  let world: RelayWorld;
  let sink: SmtpSink;
  let server: TestServer;
  const rcptReplies = new Map<string, string[]>();
  before(async () => {
    world = await startRelayWorld(
      {
        rcpt: (to) => {
          const queue = rcptReplies.get(to.toLowerCase());
          return queue?.length ? queue.shift()! : "250 2.1.5 Ok";
        },
      },
      { "nullmx.test": { MX: [[0, "."]] } },
    );
    ({ sink, server } = world);
  });
  after(() => world.close());

  const bounceFor = (subject: string) =>
    server
      .mailbox("alice@example.test")
      .map((f) => fs.readFileSync(f, "utf8"))
      .find((t) => t.includes("Subject: Undelivered Mail Returned to Sender") && t.includes(`Subject: ${subject}`));

  test("a submitted message for another domain is delivered to its MX at once and leaves the queue", async () => {
    const id = await submit(server, ["friend@far.test"], "to the world");
    const tx = await eventually("the sink's transaction", () => sink.transactions.find((t) => t.body?.toString().includes("Subject: to the world")));
    assert.equal(tx.mailLine, "MAIL FROM:<alice@example.test> SIZE=" + tx.size);
    assert.deepEqual(tx.rcptLines, ["RCPT TO:<friend@far.test>"]);
    assert.match(tx.body!.toString(), /^Received: from client\.test \(unknown \[127\.0\.0\.1\]\)\r\n\tby mx\.petrel\.test \(Petrel\) with ESMTPA id \w+\r\n\tfor <friend@far\.test>;/);
    const line = await eventually("the delivery log line", () => server.logLines().find((l) => l.msg === "delivery" && l.id === id));
    assert.equal(line.status, "sent");
    assert.match(String(line.relay), /^mx\.far\.test\[127\.0\.0\.2\]$/);
    await eventually("an empty queue", () => !fs.existsSync(`${server.dataDir}/queue/envelopes/${id}.json`));
  });

  test("messages to one MX host share a connection (the idle connection cache), each in its own transaction", async () => {
    const sessionsBefore = sink.sessions.length;
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      ids.push(await submit(server, [`reuse${n}@far.test`], `reuse ${n}`));
      await eventually(`delivery ${n}`, () => server.logLines().find((l) => l.msg === "delivery" && l.id === ids[n - 1] && l.status === "sent"));
    }
    // The three went over one connection (perhaps the one the previous test opened), RSET between them.
    const carrying = sink.sessions.filter((ss) => ss.transactions.some((t) => /Subject: reuse \d/.test(t.body?.toString() ?? "")));
    assert.equal(carrying.length, 1, "one connection for the three");
    assert.equal(carrying[0]!.transactions.filter((t) => /Subject: reuse \d/.test(t.body?.toString() ?? "")).length, 3);
    assert.ok(carrying[0]!.commands.filter((c) => c === "RSET").length >= 2, "RSET between messages");
    assert.ok(sink.sessions.length - sessionsBefore <= 1);
  });

  test("550 from the remote server: a bounce in the sender's Maildir naming the server and its reply", async () => {
    rcptReplies.set("gone@far.test", ["550 5.1.1 <gone@far.test>: no such user here"]);
    await submit(server, ["gone@far.test"], "to nobody");
    const bounce = await eventually("the bounce", () => bounceFor("to nobody"));
    assert.match(bounce, /^Return-Path: <>\n/);
    assert.match(bounce, /\nFinal-Recipient: rfc822;\s*gone@far\.test\n/);
    assert.match(bounce, /\nRemote-MTA: dns;\s*mx\.far\.test\n/);
    assert.match(bounce, /\nDiagnostic-Code: smtp;\s*550 5\.1\.1 <gone@far\.test>: no such user here\n/);
    assert.match(bounce, /The mail server mx\.far\.test said:/);
  });

  test("a null MX domain bounces at once with 5.1.10, without any connection", async () => {
    const before = sink.sessions.length;
    await submit(server, ["x@nullmx.test"], "to a null MX");
    const bounce = await eventually("the bounce", () => bounceFor("to a null MX"));
    assert.match(bounce, /\nStatus: 5\.1\.10\n/);
    assert.equal(sink.sessions.length, before);
  });

  test("451 is retried by the schedule until it is accepted", async () => {
    rcptReplies.set("later@far.test", ["451 4.7.1 greylisted, try again", "451 4.7.1 still greylisted"]);
    const id = await submit(server, ["later@far.test"], "greylisted");
    await eventually("delivered after two deferrals", () => server.logLines().find((l) => l.msg === "delivery" && l.id === id && l.status === "sent"), 15_000);
    const tries = server.logLines().filter((l) => l.msg === "delivery" && l.id === id).map((l) => l.status);
    assert.deepEqual(tries, ["deferred", "deferred", "sent"]);
  });

  test("petrel queue show lists a waiting message's recipients and headers; queue delete removes it, sending nothing", async () => {
    rcptReplies.set("stuck@far.test", Array(50).fill("451 4.2.0 mailbox busy"));
    const id = await submit(server, ["stuck@far.test"], "stuck in the queue");
    await eventually("a deferral", () => server.logLines().find((l) => l.msg === "delivery" && l.id === id && l.status === "deferred"));
    const show = server.petrel(["queue", "show", id]);
    assert.equal(show.status, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`^id: ${id}\\nsender: <alice@example\\.test>\\n`));
    assert.match(show.stdout, /\n {4}stuck@far\.test {2}deferred \(\d+ attempts?, next [^)]+\): 451 4\.2\.0 mailbox busy\n/);
    assert.match(show.stdout, /\nheaders:\n(?: {4}.*\n)* {4}Subject: stuck in the queue\n/);
    const del = server.petrel(["queue", "delete", id]);
    assert.equal(del.status, 0, del.stderr);
    assert.equal(del.stdout, `deleted ${id}\n`);
    assert.equal(fs.existsSync(`${server.dataDir}/queue/envelopes/${id}.json`), false);
    const again = server.petrel(["queue", "show", id]);
    assert.equal(again.status, 1);
    assert.equal(again.stderr, `petrel: no queue entry ${id}\n`);
    assert.ok(!bounceFor("stuck in the queue"), "deleting sends no bounce");
  });

  test("petrel queue bounce gives up on a waiting message: the sender gets a bounce naming the postmaster, the entry goes", async () => {
    rcptReplies.set("hopeless@far.test", Array(50).fill("451 4.2.0 mailbox busy"));
    const id = await submit(server, ["hopeless@far.test"], "give up on this");
    await eventually("a deferral", () => server.logLines().find((l) => l.msg === "delivery" && l.id === id && l.status === "deferred"));
    const r = server.petrel(["queue", "bounce", id]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `returned ${id} for 1 recipient; the bounce is on its way to the sender\n`);
    const bounce = await eventually("the bounce", () => bounceFor("give up on this"));
    assert.match(bounce, /\nFinal-Recipient: rfc822; hopeless@far\.test\r?\nAction: failed\r?\nStatus: 5\.0\.0\r?\n/);
    assert.match(bounce, /Diagnostic-Code: smtp; 550 5\.0\.0 returned to the sender by the postmaster/);
    await eventually("the entry removed", () => !fs.existsSync(`${server.dataDir}/queue/envelopes/${id}.json`) || undefined);
    const again = server.petrel(["queue", "bounce", id]);
    assert.equal(again.status, 1);
    assert.equal(again.stderr, `petrel: no queue entry ${id}\n`);
  });

  test("petrel sendmail to a local user who does not exist: the sender gets a bounce with the refusal, the other recipient the message", async () => {
    const r = server.petrel(["sendmail", "-f", "alice@example.test", "nobody@example.test", "pal@far.test"], "Subject: half right\n\nhello\n");
    assert.equal(r.status, 0, r.stderr);
    const bounce = await eventually("the bounce", () => bounceFor("half right"));
    assert.match(bounce, /Final-Recipient: rfc822; nobody@example\.test\r?\nAction: failed\r?\nStatus: 5\.1\.1\r?\n/);
    assert.match(bounce, /Diagnostic-Code: smtp; 550 5\.1\.1 /);
    assert.doesNotMatch(bounce, /pal@far\.test/);
    const tx = await eventually("the delivery", () => sink.transactions.find((t) => t.body?.toString().includes("Subject: half right")));
    assert.deepEqual(tx.rcptLines, ["RCPT TO:<pal@far.test>"]);
    assert.equal(fs.readdirSync(`${server.dataDir}/maildrop/new`).length, 0);
  });

  test("ETRN starts a run for a domain with mail waiting (253) and petrel queue flush does the same; 251 and 459 otherwise", async () => {
    rcptReplies.set("etrn@far.test", ["451 4.3.0 busy", "451 4.3.0 busy", "451 4.3.0 busy"]);
    const id = await submit(server, ["etrn@far.test"], "waiting for ETRN");
    const c = await RawSmtp.connect(server.smtpPort);
    await c.reply();
    const ehlo = await c.command("EHLO client.test");
    assert.ok(ehlo.lines.includes("ETRN"), ehlo.raw);
    assert.match((await c.command("ETRN far.test")).raw, /^253 2\.0\.0 OK, [1-9]\d* pending messages for node <far\.test> started\r\n$/);
    assert.equal((await c.command("ETRN nothing-waiting.test")).raw, "251 2.0.0 OK, no messages waiting for node <nothing-waiting.test>\r\n");
    assert.equal((await c.command("ETRN example.test")).code, 459);
    c.close();
    const r = server.petrel(["queue", "flush", "far.test"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\d+ messages? for far\.test queued for delivery now\n$/);
    await eventually("delivered", () => server.logLines().find((l) => l.msg === "delivery" && l.id === id && l.status === "sent"), 15_000);
    assert.ok(server.logLines().some((l) => l.msg === "ETRN" && l.domain === "far.test"));
  });
});

describe("petrel sendmail while the server is down", () => {
  test("the dropped message is picked up at start and delivered by MX", async () => {
    const sink = await SmtpSink.start({}, "127.0.0.2");
    const dns = await startDnsServer({ "far.test": { MX: [[10, "mx.far.test"]] }, "mx.far.test": { A: ["127.0.0.2"] } });
    const first = await startTestServer({ dns: `127.0.0.1:${dns.port}`, toml: `[delivery]\nmx_port = ${sink.port}\n`, keepDir: true });
    await first.stop();
    try {
      const drop = first.petrel(["sendmail", "-t", "-f", "cron@example.test"], "To: ops@far.test\nSubject: cron output\n\nall good\n");
      assert.equal(drop.status, 0, drop.stderr);
      const again = await startTestServer({ dir: first.dir, keepDir: true });
      try {
        const tx = await eventually("delivery of the dropped message", () => sink.transactions.find((t) => t.body?.toString().includes("Subject: cron output")));
        assert.deepEqual(tx.rcptLines, ["RCPT TO:<ops@far.test>"]);
        assert.match(tx.body!.toString(), /\r\nall good\r\n$/);
        assert.match(tx.body!.toString(), /\r\nDate: .+\r\nMessage-ID: <.+>\r\n/);
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

describe("the queue commands while the server is down", () => {
  test("queue list reads the state; queue delete removes at once; queue bounce is returned to the sender at the next start", async () => {
    const sink = await SmtpSink.start({ rcpt: () => "451 4.2.0 mailbox busy" }, "127.0.0.2");
    const dns = await startDnsServer({ "far.test": { MX: [[10, "mx.far.test"]] }, "mx.far.test": { A: ["127.0.0.2"] } });
    const toml = `[smtp]\nauth_without_tls = "loopback"\n[delivery]\nmx_port = ${sink.port}\nretry_schedule = [3600]\n`;
    const first = await startTestServer({ dns: `127.0.0.1:${dns.port}`, toml, users: [["alice@example.test", "pw"]], keepDir: true });
    try {
      const dropped = await submit(first, ["one@far.test"], "to be deleted");
      const returned = await submit(first, ["two@far.test"], "to be returned");
      for (const id of [dropped, returned]) await eventually("a deferral", () => first.logLines().find((l) => l.msg === "delivery" && l.id === id && l.status === "deferred"));
      await first.stop();
      const list = first.petrel(["queue", "list"]);
      assert.equal(list.status, 0, list.stderr);
      assert.match(list.stdout, new RegExp(`\\n {4}two@far\\.test {2}deferred \\(1 attempt, next [^)]+\\): 451 4\\.2\\.0 mailbox busy\\n`));
      const del = first.petrel(["queue", "delete", dropped]);
      assert.equal(del.stdout, `deleted ${dropped}\n`, del.stderr);
      assert.equal(fs.existsSync(`${first.dataDir}/queue/messages/${dropped}.eml`), false);
      const bounce = first.petrel(["queue", "bounce", returned]);
      assert.equal(bounce.stdout, `returned ${returned} to <alice@example.test> for 1 recipient; the bounce is sent when the server starts\n`, bounce.stderr);
      const rcpts = () => sink.sessions.flatMap((x) => x.commands).filter((c) => c.startsWith("RCPT")).length;
      const attempts = rcpts();
      assert.equal(attempts, 2);
      const again = await startTestServer({ dir: first.dir, keepDir: true });
      try {
        const report = await eventually("the bounce", () =>
          again.mailbox("alice@example.test").map((f) => fs.readFileSync(f, "utf8")).find((t) => t.includes("Subject: Undelivered Mail Returned to Sender")),
        );
        assert.match(report, /Subject: to be returned/);
        assert.match(report, /Final-Recipient: rfc822; two@far\.test/);
        await eventually("the returned entry removed", () => !fs.existsSync(`${again.dataDir}/queue/envelopes/${returned}.json`) || undefined);
        assert.equal(again.mailbox("alice@example.test").length, 1, "one bounce; none for the deleted message");
        assert.equal(rcpts(), attempts, "neither message was tried again");
      } finally {
        await again.stop();
      }
    } finally {
      await first.stop();
      fs.rmSync(first.dir, { recursive: true, force: true });
      await sink.close();
      await dns.close();
    }
  });
});
