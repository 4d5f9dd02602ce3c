// DKIM signing end to end (issue 10): `petrel dkim generate|list` as an administrator uses them, then a
// real `petrel serve` relaying to a sink through MX routing on a loopback DNS server. What the sink
// captured is verified by Debian's python3-dkim and by mailauth against the TXT records exactly as
// `dkim generate` printed them. Mail from outside that an alias forwards is never signed, even with a
// From: in our domain; bounces and `petrel sendmail` mail are.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startDnsServer, type DnsServer } from "./helpers/dns-server.js";
import { eventually, startRelayWorld, submit, type RelayWorld } from "./helpers/relay.js";
import { runProgram } from "./helpers/run.js";
import { PETREL_BIN, startTestServer, type TestServer } from "./helpers/server.js";
import { RawSmtp } from "./helpers/smtp-client.js";
import { SmtpSink, type SinkTransaction } from "../src/testing/smtp-sink.js";
import { mailauthDkimVerify, pythonDkimVerifyAll, txtRecords } from "../src/testing/dkim-verifiers.js";
import { dataStream } from "./smtp-protocol-helpers.js";

const MB = 1024 * 1024;

describe("DKIM signing", () => {
  let world: RelayWorld;
  let dns: DnsServer;
  let sink: SmtpSink;
  let server: TestServer;
  const records: string[] = [];

  before(async () => {
    world = await startRelayWorld({ rcpt: (to) => (to.toLowerCase().startsWith("gone@") ? "550 5.1.1 no such user" : "250 2.1.5 Ok") });
    ({ dns, sink, server } = world);
  });
  after(() => world.close());

  const received = (subject: string) =>
    eventually(`the sink's copy of "${subject}"`, () => sink.transactions.find((t) => t.body?.toString("latin1").includes(`Subject: ${subject}\r\n`)));
  const fields = (tx: SinkTransaction) => tx.body!.toString("latin1").replace(/\r\n[ \t]/g, " ").split("\r\n\r\n")[0]!.split("\r\n");

  test("before any key exists, mail leaves unsigned (and the start says so)", async () => {
    await server.waitForLog((l) => l.msg === "no DKIM keys: mail leaves unsigned (petrel dkim generate DOMAIN makes one)" && l.keyDir === `${server.dataDir}/dkim`);
    await submit(server, ["friend@far.test"], "no key yet");
    const tx = await received("no key yet");
    assert.ok(!fields(tx).some((f) => /^DKIM-Signature:/i.test(f)));
  });

  test("dkim generate prints only the record on stdout, notes on stderr; RSA 2048 and Ed25519 under data_dir/dkim", () => {
    const r = server.petrel(["dkim", "generate", "example.test", "--selector", "mail-rsa"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^mail-rsa\._domainkey\.example\.test\. IN TXT "v=DKIM1; k=rsa; p=[A-Za-z0-9+/]{237}" "[A-Za-z0-9+/]+=*"\n$/);
    assert.equal(
      r.stderr,
      `petrel: wrote ${server.dataDir}/dkim/example.test/mail-rsa.rsa.key (RSA 2048). Mail from @example.test is signed with it from now on.\n` +
        "petrel: publish the TXT record above in the DNS of example.test, then check it with: petrel dkim check example.test\n",
    );
    const e = server.petrel(["dkim", "generate", "example.test", "--algorithm", "ed25519", "--selector", "mail-ed"]);
    assert.equal(e.status, 0, e.stderr);
    assert.match(e.stdout, /^mail-ed\._domainkey\.example\.test\. IN TXT "v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}="\n$/);
    records.push(r.stdout.trim(), e.stdout.trim());
  });

  test("dkim generate refuses with one line: an existing selector, a bad domain, algorithm or selector, no domain", () => {
    const cases: [string[], RegExp][] = [
      [["example.test", "--selector", "mail-rsa"], /^petrel: a key for selector mail-rsa of example\.test exists already \(.*\); pass --selector NAME for a new one, or --force to replace it\n$/],
      [["example.test", "--selector", "mail-rsa", "--algorithm", "ed25519"], /^petrel: selector mail-rsa of example\.test already has an rsa key: each key needs its own selector \(one TXT record per name\); pass --selector\n$/],
      [["bad..domain"], /^petrel: not a domain name: "bad\.\.domain"\n$/],
      [["example.test", "--algorithm", "dsa"], /^petrel: --algorithm must be rsa or ed25519, not "dsa"\n$/],
      [["example.test", "--selector", "a_b"], /^petrel: not a selector: "a_b" \(letters, digits, hyphens, dots\)\n$/],
      [[], /^petrel: missing required argument 'domain'\n$/],
    ];
    for (const [args, stderr] of cases) {
      const r = server.petrel(["dkim", "generate", ...args]);
      assert.equal(r.status, 1, args.join(" "));
      assert.match(r.stderr, stderr);
      assert.equal(r.stdout, "");
    }
  });

  test("a domain that is not one of ours gets a key with a warning (mx.petrel.test, the domain of our bounces' From:)", () => {
    const r = server.petrel(["dkim", "generate", "mx.petrel.test", "--algorithm", "ed25519", "--selector", "bounces"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^petrel: warning: mx\.petrel\.test is not in "domains" of the config; mail is signed with this key only when its From: domain is exactly mx\.petrel\.test\n/);
    records.push(r.stdout.trim());
  });

  test("dkim list shows every key with its record", () => {
    const r = server.petrel(["dkim", "list"]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split("\n");
    assert.match(lines[0]!, /^DOMAIN +SELECTOR +ALGORITHM +CREATED$/);
    assert.match(lines[1]!, /^example\.test +mail-rsa +rsa +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(lines[2], `    ${records[0]}`);
    assert.match(lines[3]!, /^example\.test +mail-ed +ed25519 +\S+Z$/);
    assert.equal(lines[4], `    ${records[1]}`);
    assert.match(lines[5]!, /^mx\.petrel\.test +bounces +ed25519 +\S+Z$/);
    assert.equal(lines[6], `    ${records[2]}`);
  });

  test("dkim check looks the records up through [dns] servers: MISSING and exit 1 until published, then ok; a stale record is WRONG", async () => {
    // Not server.petrel (spawnSync): the test's DNS server answers from this process's event loop.
    const check = (...args: string[]) => runProgram(PETREL_BIN, ["dkim", "check", ...args, "--config", server.configPath]);
    const missing = await check("example.test");
    assert.equal(missing.status, 1);
    assert.equal(
      missing.stdout,
      "MISSING   mail-rsa._domainkey.example.test (rsa): no TXT record at mail-rsa._domainkey.example.test\n" +
        "MISSING   mail-ed._domainkey.example.test (ed25519): no TXT record at mail-ed._domainkey.example.test\n",
    );
    const zone = txtRecords(records);
    const published = Object.fromEntries([...zone].map(([name, value]) => [name, { TXT: [value] }]));
    dns.setZone({ "far.test": { MX: [[10, "mx.far.test"]] }, "mx.far.test": { A: ["127.0.0.2"] }, ...published });
    const ok = await check();
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.equal(
      ok.stdout,
      "ok        mail-rsa._domainkey.example.test (rsa)\n" +
        "ok        mail-ed._domainkey.example.test (ed25519)\n" +
        "ok        bounces._domainkey.mx.petrel.test (ed25519)\n",
    );
    dns.setZone({ ...published, "mail-ed._domainkey.example.test": { TXT: [zone.get("bounces._domainkey.mx.petrel.test")!] }, "far.test": { MX: [[10, "mx.far.test"]] }, "mx.far.test": { A: ["127.0.0.2"] } });
    const wrong = await check("example.test");
    assert.equal(wrong.status, 1);
    assert.match(wrong.stdout, /\nWRONG     mail-ed\._domainkey\.example\.test \(ed25519\): the record's p= is another key \(an old one, or copied incompletely\)\n$/);
    assert.match((await check("nowhere.test")).stderr, /^petrel: no DKIM key for nowhere\.test \(petrel dkim generate nowhere\.test makes one\)\n$/);
    dns.setZone({ "far.test": { MX: [[10, "mx.far.test"]] }, "mx.far.test": { A: ["127.0.0.2"] }, ...published });
  });

  test("a submitted message leaves with an RSA and an Ed25519 signature that python3-dkim and mailauth verify; a changed body fails", async () => {
    const id = await submit(server, ["friend@far.test"], "signed twice");
    const tx = await received("signed twice");
    const head = fields(tx);
    // No To: in this message: To is in h= once, oversigned (a To: added on the way breaks the signature).
    assert.match(head[0]!.replace(/\s+:/g, ":"), /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.test; s=mail-rsa; t=\d+; h=From:From:Subject:Subject:Date:Date:Message-ID:Message-ID:To:Cc:MIME-Version:Content-Type:Content-Transfer-Encoding; bh=/);
    assert.match(head[1]!, /^DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed\/relaxed; d=example\.test; s=mail-ed;/);
    assert.match(head[2]!, /^Received: /);
    assert.equal(/ SIZE=(\d+)/.exec(tx.mailLine)?.[1], String(tx.body!.length), "SIZE= counts the signatures");
    const zone = txtRecords(records);
    const tampered = Buffer.from(tx.body!.toString("latin1").replace("hello signed twice", "hello signed thrice"), "latin1");
    assert.deepEqual(await pythonDkimVerifyAll([tx.body!, tampered], zone), [[true, true], [false, false]]);
    assert.deepEqual((await mailauthDkimVerify(tx.body!, zone)).map((r) => `${r.result} ${r.algo}`), ["pass rsa-sha256", "pass ed25519-sha256"]);
    const line = await eventually("the signing log line", () => server.logLines().find((l) => l.msg === "DKIM-signed" && l.id === id));
    assert.deepEqual(line.selectors, ["mail-rsa", "mail-ed"]);
  });

  test("mail from outside forwarded by an alias is not signed, even with our domain in From:; its bounce to the outside sender is", async () => {
    const alias = server.petrel(["alias", "add", "fwd@example.test", "gone@far.test", "friend@far.test"]);
    assert.equal(alias.status, 0, alias.stderr);
    const c = await RawSmtp.connect(server.smtpPort);
    assert.equal((await c.reply()).code, 220);
    assert.equal((await c.command("EHLO outside.test")).code, 250);
    assert.equal((await c.command("MAIL FROM:<stranger@far.test>")).code, 250);
    assert.equal((await c.command("RCPT TO:<fwd@example.test>")).code, 250);
    assert.equal((await c.command("DATA")).code, 354);
    c.write("From: alice@example.test\r\nSubject: forged alice\r\n\r\nnot from alice\r\n.\r\n");
    assert.equal((await c.reply()).code, 250);
    c.close();
    const fwd = await received("forged alice");
    assert.ok(!fields(fwd).some((f) => /^DKIM-Signature:/i.test(f)), "the forwarded copy carries no signature of ours");
    const bounce = await eventually("the bounce to stranger@far.test", () =>
      sink.transactions.find((t) => t.mailLine.startsWith("MAIL FROM:<>") && t.rcptLines.includes("RCPT TO:<stranger@far.test>")),
    );
    const head = fields(bounce);
    assert.match(head[0]!, /^DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed\/relaxed; d=mx\.petrel\.test; s=bounces;/);
    assert.ok(head.some((f) => /^From: .*MAILER-DAEMON@mx\.petrel\.test/i.test(f)));
    assert.deepEqual(await pythonDkimVerifyAll([bounce.body!], txtRecords(records)), [[true]]);
  });

  test("petrel sendmail's mail is signed", async () => {
    const r = server.petrel(["sendmail", "-f", "alice@example.test", "friend@far.test"], "From: alice@example.test\nSubject: via sendmail\n\nhello from sendmail\n");
    assert.equal(r.status, 0, r.stderr);
    const tx = await received("via sendmail");
    assert.deepEqual(await pythonDkimVerifyAll([tx.body!], txtRecords(records)), [[true, true]]);
  });
});

describe("DKIM signing of a 50 MB message", { skip: process.platform !== "linux" && "needs /proc (Linux)" }, () => {
  let dns: DnsServer;
  let sink: SmtpSink;
  let server: TestServer;
  before(async () => {
    sink = await SmtpSink.start({ extensions: ["PIPELINING", "8BITMIME", `SIZE ${100 * MB}`] }, "127.0.0.2");
    dns = await startDnsServer({ "far.test": { MX: [[10, "mx.far.test"]] }, "mx.far.test": { A: ["127.0.0.2"] } });
    server = await startTestServer({
      dns: `127.0.0.1:${dns.port}`,
      toml: `[smtp]\nauth_without_tls = "loopback"\n[limits]\nmax_message_size = ${64 * MB}\n[delivery]\nmx_port = ${sink.port}\n`,
      users: [["alice@example.test", "pw"]],
    });
    for (const alg of ["rsa", "ed25519"]) assert.equal(server.petrel(["dkim", "generate", "example.test", "--algorithm", alg]).status, 0);
  });
  after(async () => {
    await server.stop();
    await sink.close();
    await dns.close();
  });

  const peakRssKb = (pid: number) => Number(/^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]);

  test("is received, signed twice and relayed while the server's peak RSS grows by far less than the message", async () => {
    // Warm-up: a small signed message loads the relay's and the signer's code and keys.
    const warm = await submit(server, ["friend@far.test"], "warm-up");
    await eventually("the warm-up's signing", () => server.logLines().find((l) => l.msg === "DKIM-signed" && l.id === warm));
    await eventually("the warm-up's delivery", () => server.logLines().find((l) => l.msg === "delivery" && l.id === warm));
    const pid = server.process.pid!;
    const baseline = peakRssKb(pid);

    const line = Buffer.from("Lorem ipsum dolor sit amet,  consectetur\tadipiscing elit, sed do eiusmod tempor \r\n");
    const head = Buffer.from("From: alice@example.test\r\nTo: friend@far.test\r\nSubject: fifty megabytes\r\n\r\n");
    const content = Buffer.alloc(50 * MB);
    head.copy(content);
    for (let pos = head.length; pos < content.length; pos += line.length) line.copy(content, pos);
    content.write("\r\n", content.length - 2);
    const c = await RawSmtp.connect(server.smtpPort);
    assert.equal((await c.reply()).code, 220);
    assert.equal((await c.command("EHLO client.test")).code, 250);
    assert.equal((await c.command(`AUTH PLAIN ${Buffer.from("\0alice@example.test\0pw").toString("base64")}`)).code, 235);
    assert.equal((await c.command("MAIL FROM:<alice@example.test>")).code, 250);
    assert.equal((await c.command("RCPT TO:<friend@far.test>")).code, 250);
    assert.equal((await c.command("DATA")).code, 354);
    const stream = dataStream(content);
    for (let pos = 0, n = 0; pos < stream.length; pos += 64 * 1024, n++) {
      c.write(stream.subarray(pos, pos + 64 * 1024));
      if (n % 8 === 7) await new Promise((r) => setImmediate(r));
    }
    const r = await c.reply(60_000);
    assert.equal(r.code, 250, r.raw);
    c.close();
    const id = /queued as (\w+)/.exec(r.raw)![1]!;
    const signedLine = await eventually("the signing", () => server.logLines().find((l) => l.msg === "DKIM-signed" && l.id === id), 60_000);
    assert.match((signedLine.selectors as string[]).join(" "), /^petrel-\d{6}-rsa petrel-\d{6}-ed25519$/);
    const tx = await eventually("the sink's copy", () => sink.transactions.find((t) => t.size > 50 * MB), 60_000);
    // What arrived: our Received, the two signatures and the content (SIZE= announced exactly that).
    assert.equal(/ SIZE=(\d+)/.exec(tx.mailLine)?.[1], String(tx.size));
    assert.ok(tx.size > content.length + 600, `${tx.size} octets: the signatures are in front`);
    const grownMb = (peakRssKb(pid) - baseline) / 1024;
    console.log(`# 50 MB received, signed and relayed: peak RSS ${(baseline / 1024).toFixed(1)} MB -> +${grownMb.toFixed(1)} MB`);
    assert.ok(grownMb < 25, `peak RSS grew by ${grownMb.toFixed(1)} MB`);
  });
});

test("root making a key in a data_dir that belongs to the server's user gives the key to that user (the server must read it)", { skip: process.getuid?.() !== 0 && "needs root" }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-dkim-owner-"));
  try {
    const dataDir = path.join(dir, "data");
    fs.mkdirSync(dataDir, { mode: 0o700 });
    fs.chownSync(dataDir, 65534, 65534);
    fs.writeFileSync(path.join(dir, "petrel.toml"), `domains = ["example.test"]\ndata_dir = "${dataDir}"\n`);
    const r = await runProgram(PETREL_BIN, ["dkim", "generate", "example.test", "--selector", "s", "--config", path.join(dir, "petrel.toml")]);
    assert.equal(r.status, 0, r.stderr);
    for (const p of ["dkim", "dkim/example.test", "dkim/example.test/s.rsa.key"]) {
      const st = fs.statSync(path.join(dataDir, p));
      assert.deepEqual([st.uid, st.gid, st.mode & 0o777], [65534, 65534, p.endsWith(".key") ? 0o600 : 0o700], p);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
