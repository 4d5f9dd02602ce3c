// Users, aliases and lists as SMTP sees them (RFC 5321 §3.5 VRFY/EXPN, §3.9 aliases and lists,
// §4.1.1.3 RCPT): exact replies over a raw socket, delivery checked in the Maildirs and the relay
// queue. Accounts are set up with the real CLI, also while the server runs.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { RawSmtp, type RawReply } from "./helpers/smtp-client.js";

/** Runs a petrel CLI command against the server's config and expects success. */
function cli(server: TestServer, ...args: string[]): void {
  const r = server.petrel(args, args[0] === "user" && args[1] === "add" ? "secret\n" : undefined);
  assert.equal(r.status, 0, `petrel ${args.join(" ")}: ${r.stderr}`);
}

/** A greeted connection (EHLO client.test done). */
async function connect(server: TestServer): Promise<RawSmtp> {
  const c = await RawSmtp.connect(server.smtpPort);
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.command("EHLO client.test")).code, 250);
  return c;
}

/** Sends one command on a fresh connection and returns the raw reply. */
async function ask(server: TestServer, line: string): Promise<string> {
  const c = await connect(server);
  try {
    return (await c.command(line)).raw;
  } finally {
    c.close();
  }
}

interface SendResult {
  readonly rcpt: RawReply[];
  /** The reply to the end of DATA; undefined when no recipient was accepted. */
  readonly final?: RawReply;
  readonly id?: string;
}

/** One transaction: MAIL FROM:<sender>, a RCPT per address, DATA with `body` when any RCPT got 250. */
async function send(server: TestServer, rcpts: readonly string[], body: string, sender = "sender@client.test"): Promise<SendResult> {
  const c = await connect(server);
  try {
    assert.equal((await c.command(`MAIL FROM:<${sender}>`)).code, 250);
    const rcpt: RawReply[] = [];
    for (const r of rcpts) rcpt.push(await c.command(`RCPT TO:<${r}>`));
    if (!rcpt.some((r) => r.code === 250)) return { rcpt };
    assert.equal((await c.command("DATA")).code, 354);
    c.write(body + ".\r\n");
    const final = await c.reply();
    await c.command("QUIT");
    return { rcpt, final, id: /queued as (\S+)/.exec(final.raw)?.[1] };
  } finally {
    c.close();
  }
}

/** A message with CRLF line ends and a unique subject, so copies can be told apart. */
function message(subject: string): string {
  return `From: sender@client.test\r\nSubject: ${subject}\r\n\r\nbody of ${subject}\r\n`;
}

/** Contents of every message in a mailbox. */
function contents(server: TestServer, address: string): string[] {
  // Files have LF line ends; compared here in their wire form (CRLF).
  return server.mailbox(address).map((f) => crlf(fs.readFileSync(f, "utf8")));
}

function crlf(text: string): string {
  return text.replace(/\r?\n/g, "\r\n");
}

/** Asserts the mailbox holds exactly `n` copies of the message with this subject; returns them. */
function copiesOf(server: TestServer, address: string, subject: string, n: number): string[] {
  const found = contents(server, address).filter((c) => c.includes(`\r\nSubject: ${subject}\r\n`));
  assert.equal(found.length, n, `${address} should hold ${n} cop${n === 1 ? "y" : "ies"} of "${subject}", holds ${found.length}`);
  return found;
}

/** The Received header Petrel writes (spool/trace-headers.ts), with the RCPT address it names. */
function receivedFor(id: string, rcpt: string): RegExp {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(
    `^Return-Path: <sender@client\\.test>\r\nReceived: from client\\.test \\(unknown \\[127\\.0\\.0\\.1\\]\\)\r\n` +
      `\tby mx\\.petrel\\.test \\(Petrel\\) with ESMTP id ${esc(id)}\r\n\tfor <${esc(rcpt)}>;\r\n\t[^\r\n]+\r\n`,
  );
}

const USERS = [
  ["fred@localhost", "pw", "Fred Smith"],
  ["harry@localhost", "pw", "Harry Smith"],
  ["alice@localhost", "pw", "Alice Liddell"],
  ["bob@localhost", "pw"],
  ["carol@example.test", "pw", "Carol Jones"],
  ["jurgen@localhost", "pw", "Jürgen Groß"],
] as const;

describe("VRFY and EXPN with partial-name search on (smtp.vrfy_search = true)", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: USERS, toml: "[smtp]\nvrfy_search = true\n" });
    cli(server, "alias", "add", "fwd@localhost", "someone@remote.test");
    cli(server, "alias", "add", "postbox@localhost", "alice@localhost");
    cli(server, "list", "add", "team@localhost", "fred@localhost", "bob@localhost", "ext@remote.test", "carol@example.test");
  });
  after(async () => {
    await server.stop();
  });

  test("VRFY of a full address gives the display name", async () => {
    assert.equal(await ask(server, "VRFY fred@localhost"), "250 2.1.5 Fred Smith <fred@localhost>\r\n");
    assert.equal(await ask(server, "VRFY <Fred@LOCALHOST>"), "250 2.1.5 Fred Smith <fred@localhost>\r\n");
  });

  test("VRFY of a bare user name gives the same answer", async () => {
    assert.equal(await ask(server, "VRFY fred"), "250 2.1.5 Fred Smith <fred@localhost>\r\n");
  });

  test("VRFY of a user without a display name gives the address alone", async () => {
    assert.equal(await ask(server, "VRFY bob@localhost"), "250 2.1.5 <bob@localhost>\r\n");
  });

  test("VRFY of an alias for a local user names that user", async () => {
    assert.equal(await ask(server, "VRFY postbox@localhost"), "250 2.1.5 Alice Liddell <alice@localhost>\r\n");
  });

  test("VRFY of an unknown name or address is 550 5.1.1", async () => {
    assert.match(await ask(server, "VRFY nobody"), /^550 5\.1\.1 [^\r\n]*\r\n$/);
    assert.match(await ask(server, "VRFY nobody@localhost"), /^550 5\.1\.1 [^\r\n]*\r\n$/);
  });

  test("VRFY of an ambiguous partial name is 553 5.1.4 listing every candidate", async () => {
    const raw = await ask(server, "VRFY smith");
    const lines = raw.split("\r\n").slice(0, -1);
    // Every line but the last is "553-", the last "553 " (RFC 5321 §4.2.1); one candidate per line.
    assert.ok(lines.length >= 3, raw);
    lines.forEach((l, i) => assert.match(l, i === lines.length - 1 ? /^553 5\.1\.4 / : /^553-5\.1\.4 /, raw));
    const candidates = lines.map((l) => l.slice("553-5.1.4 ".length)).filter((l) => l.includes("<"));
    assert.deepEqual(candidates.sort(), ["Fred Smith <fred@localhost>", "Harry Smith <harry@localhost>"], raw);
  });

  test("VRFY of an alias that forwards off-site is 251 with the new address", async () => {
    assert.equal(await ask(server, "VRFY fwd@localhost"), "251 2.1.5 User not local; will forward to <someone@remote.test>\r\n");
  });

  test("VRFY of an address in a non-local domain is 550", async () => {
    assert.match(await ask(server, "VRFY someone@remote.test"), /^550 5\.1\.2 [^\r\n]*\r\n$/);
  });

  test("VRFY and EXPN accept the RFC 6531 SMTPUTF8 parameter", async () => {
    assert.equal(await ask(server, "VRFY fred@localhost SMTPUTF8"), "250 2.1.5 Fred Smith <fred@localhost>\r\n");
    assert.match(await ask(server, "EXPN team@localhost SMTPUTF8"), /^250-2\.1\.5 Fred Smith <fred@localhost>\r\n/);
  });

  test("a non-ASCII answer needs the SMTPUTF8 parameter (RFC 6531 3.7.4.2), else 553 5.6.7", async () => {
    const utf8 = (text: string) => Buffer.from(text, "utf8").toString("latin1"); // RawSmtp reads bytes as latin1
    assert.equal(await ask(server, "VRFY jurgen@localhost SMTPUTF8"), utf8("250 2.1.5 Jürgen Groß <jurgen@localhost>\r\n"));
    assert.match(await ask(server, "VRFY jurgen@localhost"), /^553 5\.6\.7 /);
  });

  test("EXPN of a list: one 250 line per member, display names for local users", async () => {
    assert.equal(
      await ask(server, "EXPN team@localhost"),
      "250-2.1.5 Fred Smith <fred@localhost>\r\n" +
        "250-2.1.5 <bob@localhost>\r\n" +
        "250-2.1.5 <ext@remote.test>\r\n" +
        "250 2.1.5 Carol Jones <carol@example.test>\r\n",
    );
  });

  test("EXPN of a user is 550 5.1.0", async () => {
    assert.equal(await ask(server, "EXPN fred@localhost"), "550 5.1.0 That is a user name, not a mailing list\r\n");
  });

  test("EXPN of an unknown list is 550", async () => {
    assert.match(await ask(server, "EXPN nolist@localhost"), /^550 5\.1\.1 [^\r\n]*\r\n$/);
    assert.match(await ask(server, "EXPN nolist"), /^550 5\.1\.1 [^\r\n]*\r\n$/);
  });
});

describe("VRFY and EXPN turned off, and no forwarding off-site", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: USERS, toml: "[smtp]\nvrfy = false\nexpn = false\nforward_offsite = false\n" });
    cli(server, "alias", "add", "fwd@localhost", "someone@remote.test");
    cli(server, "list", "add", "team@localhost", "fred@localhost", "bob@localhost");
  });
  after(async () => {
    await server.stop();
  });

  test("VRFY = false: 252 2.5.2 for users and unknown names alike", async () => {
    assert.match(await ask(server, "VRFY fred@localhost"), /^252 2\.5\.2 [^\r\n]*\r\n$/);
    assert.match(await ask(server, "VRFY nobody"), /^252 2\.5\.2 [^\r\n]*\r\n$/);
  });

  test("EXPN = false: 502 5.5.1", async () => {
    assert.match(await ask(server, "EXPN team@localhost"), /^502 5\.5\.1 [^\r\n]*\r\n$/);
  });

  test("mail to an off-site alias is refused with 551 5.1.6 naming the forward address", async () => {
    const r = await send(server, ["fwd@localhost"], message("no forwarding"));
    assert.equal(r.rcpt[0]!.raw, "551 5.1.6 User not local; please try <someone@remote.test>\r\n");
    assert.deepEqual(fs.existsSync(path.join(server.dataDir, "queue", "envelopes")) ? fs.readdirSync(path.join(server.dataDir, "queue", "envelopes")) : [], [], "nothing queued");
  });
});

describe("VRFY of an off-site alias with forward_offsite = false (VRFY on)", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: USERS, toml: "[smtp]\nforward_offsite = false\n" });
    cli(server, "alias", "add", "fwd@localhost", "someone@remote.test");
  });
  after(async () => {
    await server.stop();
  });

  test("VRFY and RCPT both say 551 5.1.6", async () => {
    assert.equal(await ask(server, "VRFY fwd@localhost"), "551 5.1.6 User not local; please try <someone@remote.test>\r\n");
    const r = await send(server, ["fwd@localhost"], message("no forwarding either"));
    assert.equal(r.rcpt[0]!.raw, "551 5.1.6 User not local; please try <someone@remote.test>\r\n");
  });
});

describe("delivery through aliases and lists", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: USERS });
  });
  after(async () => {
    await server.stop();
  });

  test("an alias delivers to its user, and Received names the alias", async () => {
    cli(server, "user", "add", "dora@localhost", "--password-stdin");
    cli(server, "alias", "add", "info@localhost", "dora@localhost");
    const body = message("to the alias");
    const r = await send(server, ["info@localhost"], body);
    assert.equal(r.rcpt[0]!.raw, "250 2.1.5 Ok\r\n");
    assert.match(r.final!.raw, /^250 2\.0\.0 /);
    const [copy] = copiesOf(server, "dora@localhost", "to the alias", 1);
    const m = receivedFor(r.id!, "info@localhost").exec(copy!);
    assert.ok(m, copy);
    assert.equal(copy!.slice(m[0].length), body);
    assert.deepEqual(server.mailbox("info@localhost"), [], "no mailbox for the alias itself");
  });

  test("an alias chain a -> b -> user delivers once to the user", async () => {
    cli(server, "user", "add", "eve@localhost", "--password-stdin");
    cli(server, "alias", "add", "chain-b@localhost", "eve@localhost");
    cli(server, "alias", "add", "chain-a@localhost", "chain-b@localhost");
    const r = await send(server, ["chain-a@localhost"], message("through the chain"));
    assert.equal(r.rcpt[0]!.code, 250);
    assert.match(r.final!.raw, /^250 2\.0\.0 /);
    const [copy] = copiesOf(server, "eve@localhost", "through the chain", 1);
    assert.match(copy!, receivedFor(r.id!, "chain-a@localhost"));
  });

  test("an alias loop a -> b -> a is refused at RCPT with 550 5.4.6", async () => {
    cli(server, "alias", "add", "loop-a@localhost", "loop-b@localhost", "--force");
    cli(server, "alias", "add", "loop-b@localhost", "loop-a@localhost");
    const r = await send(server, ["loop-a@localhost", "loop-b@localhost"], message("loop"));
    assert.match(r.rcpt[0]!.raw, /^550 5\.4\.6 [^\r\n]*\r\n$/);
    assert.match(r.rcpt[1]!.raw, /^550 5\.4\.6 [^\r\n]*\r\n$/);
  });

  test("a list of three local users gives each exactly one copy", async () => {
    for (const u of ["m1", "m2", "m3"]) cli(server, "user", "add", `${u}@localhost`, "--password-stdin");
    cli(server, "list", "add", "three@localhost", "m1@localhost", "m2@localhost", "m3@localhost");
    const r = await send(server, ["three@localhost"], message("to three"));
    assert.equal(r.rcpt[0]!.code, 250);
    assert.match(r.final!.raw, /^250 2\.0\.0 /);
    for (const u of ["m1", "m2", "m3"]) {
      const [copy] = copiesOf(server, `${u}@localhost`, "to three", 1);
      assert.match(copy!, receivedFor(r.id!, "three@localhost"));
    }
  });

  test("a user named directly and through a list in one transaction gets one copy", async () => {
    cli(server, "user", "add", "gus@localhost", "--password-stdin");
    cli(server, "user", "add", "hal@localhost", "--password-stdin");
    cli(server, "list", "add", "pair@localhost", "gus@localhost", "hal@localhost");
    cli(server, "alias", "add", "gus-alias@localhost", "gus@localhost");
    const r = await send(server, ["gus@localhost", "pair@localhost", "gus-alias@localhost"], message("once only"));
    assert.deepEqual(r.rcpt.map((x) => x.code), [250, 250, 250]);
    assert.match(r.final!.raw, /^250 2\.0\.0 /);
    copiesOf(server, "gus@localhost", "once only", 1);
    copiesOf(server, "hal@localhost", "once only", 1);
  });

  test("a list with a remote member: local copies delivered, the remote one queued for the relay", async () => {
    cli(server, "user", "add", "ida@localhost", "--password-stdin");
    cli(server, "list", "add", "mixed@localhost", "ida@localhost", "far@remote.test", "alice@localhost");
    const body = message("partly remote");
    const r = await send(server, ["mixed@localhost"], body, "sender@client.test");
    assert.equal(r.rcpt[0]!.code, 250);
    assert.match(r.final!.raw, /^250 2\.0\.0 /);
    const id = r.id!;
    copiesOf(server, "ida@localhost", "partly remote", 1);
    copiesOf(server, "alice@localhost", "partly remote", 1);

    const queued = crlf(fs.readFileSync(path.join(server.dataDir, "queue", "messages", `${id}.eml`), "utf8"));
    assert.ok(queued.endsWith(body), queued);
    assert.match(queued, /^Received: from client\.test \(unknown \[127\.0\.0\.1\]\)\r\n\tby mx\.petrel\.test \(Petrel\) with ESMTP id /);
    const envelope = JSON.parse(fs.readFileSync(path.join(server.dataDir, "queue", "envelopes", `${id}.json`), "utf8")) as Record<string, unknown>;
    assert.equal(envelope.id, id);
    assert.equal(envelope.sender, "sender@client.test");
    assert.equal(envelope.version, 2);
    assert.deepEqual(envelope.recipients, [{ to: "far@remote.test", orcpt: "rfc822;mixed@localhost", state: { kind: "scheduled" }, attempts: 0, next_attempt: envelope.received }]);
    assert.deepEqual(fs.readdirSync(path.join(server.dataDir, "queue", "messages")).filter((f) => !f.endsWith(".eml")), [], "no temporary files left");
    assert.deepEqual(fs.readdirSync(path.join(server.dataDir, "queue", "tmp")), [], "no queue temporaries left");
    assert.deepEqual(fs.readdirSync(path.join(server.dataDir, "queue", "envelopes")), [`${id}.json`], "no envelope temporaries left");
    // The log says where the copies went (issue 7, item 15).
    const line = server.logLines().find((l) => l.msg === "transaction" && l.id === id);
    assert.ok(line, "transaction line");
    assert.deepEqual([line.mailboxes, line.mailboxes_total, line.queued, line.queued_total], [["ida@localhost", "alice@localhost"], 2, ["far@remote.test"], 1]);
  });

  test("CLI changes while the server runs take effect on the next RCPT", async () => {
    const c = await connect(server);
    try {
      assert.equal((await c.command("MAIL FROM:<sender@client.test>")).code, 250);
      assert.match((await c.command("RCPT TO:<newbie@localhost>")).raw, /^550 5\.1\.1 /);
      cli(server, "user", "add", "newbie@localhost", "--password-stdin");
      assert.equal((await c.command("RCPT TO:<newbie@localhost>")).raw, "250 2.1.5 Ok\r\n");
      cli(server, "user", "del", "newbie@localhost");
      assert.match((await c.command("RCPT TO:<newbie@localhost>")).raw, /^550 5\.1\.1 /);
      cli(server, "alias", "add", "late@localhost", "alice@localhost");
      assert.equal((await c.command("RCPT TO:<late@localhost>")).raw, "250 2.1.5 Ok\r\n");
      cli(server, "alias", "del", "late@localhost");
      assert.match((await c.command("RCPT TO:<late@localhost>")).raw, /^550 5\.1\.1 /);
      cli(server, "list", "add", "latelist@localhost", "alice@localhost");
      assert.equal((await c.command("RCPT TO:<latelist@localhost>")).raw, "250 2.1.5 Ok\r\n");
      cli(server, "list", "del", "latelist@localhost");
      assert.match((await c.command("RCPT TO:<latelist@localhost>")).raw, /^550 5\.1\.1 /);
      assert.equal((await c.command("QUIT")).code, 221);
    } finally {
      c.close();
    }
  });

  test("addresses are case-insensitive: RCPT TO:<ALICE@LocalHost> reaches alice", async () => {
    const r = await send(server, ["ALICE@LocalHost"], message("shouted"));
    assert.equal(r.rcpt[0]!.raw, "250 2.1.5 Ok\r\n");
    assert.match(r.final!.raw, /^250 2\.0\.0 /);
    const [copy] = copiesOf(server, "alice@localhost", "shouted", 1);
    assert.match(copy!, receivedFor(r.id!, "ALICE@LocalHost"));
    assert.ok(!fs.existsSync(path.join(server.dataDir, "mailboxes", "LocalHost")), "no second mailbox under another case");
  });

  test("postmaster is always accepted (RFC 5321 4.5.1), bare <Postmaster> too, into the postmaster Maildir", async () => {
    const r = await send(server, ["postmaster@example.test", "Postmaster"], message("for the postmaster"));
    assert.deepEqual(r.rcpt.map((x) => x.raw), ["250 2.1.5 Ok\r\n", "250 2.1.5 Ok\r\n"]);
    assert.match(r.final!.raw, /^250 2\.0\.0 /);
    copiesOf(server, "postmaster@example.test", "for the postmaster", 1);
    copiesOf(server, "postmaster@localhost", "for the postmaster", 1);
  });
});
