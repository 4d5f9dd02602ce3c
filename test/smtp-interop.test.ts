// Interoperability with SMTP clients nobody here wrote: Python's smtplib, curl and swaks, each run
// against the real `petrel serve` on loopback. Every delivered copy is compared byte for byte with
// what the client sent, after the Return-Path and Received lines Petrel adds (RFC 5321 §4.4).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { requireTool, runTool } from "./helpers/tools.js";

/** Runs a Python script that prints one JSON document on its last line; argv[1] is the SMTP port. */
async function python<T>(server: TestServer, script: string, ...args: string[]): Promise<T> {
  const r = await runTool("python3", ["-c", script, String(server.smtpPort), ...args]);
  assert.equal(r.status, 0, `python3 failed:\n${r.stderr}${r.stdout}`);
  const last = r.stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(last) as T;
}

const DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const MONTH = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

interface Trace {
  readonly sender: string;
  readonly helo: string;
  /** "ESMTP", "SMTP" or "UTF8SMTP". */
  readonly protocol: string;
  /** The RCPT TO address the Received line names with "for". */
  readonly rcpt: string;
}

/** Return-Path plus the four-line Received header of spool/trace-headers.ts; group 1 is the queue id. */
function traceHeaders(t: Trace): RegExp {
  return new RegExp(
    `^Return-Path: <${escapeRe(t.sender)}>\n` +
      `Received: from ${escapeRe(t.helo)} \\(unknown \\[127\\.0\\.0\\.1\\]\\)\n` +
      `\tby mx\\.petrel\\.test \\(Petrel\\) with ${t.protocol} id ([0-9A-Z]+)\n` +
      `\tfor <${escapeRe(t.rcpt)}>;\n` +
      `\t${DAY}, \\d{1,2} ${MONTH} \\d{4} \\d\\d:\\d\\d:\\d\\d [+-]\\d{4}\n`,
  );
}

/** Compares bytes; small contents as text (readable diffs), large ones by length and first difference. */
function assertSameBytes(actual: Buffer, expected: Buffer, what: string): void {
  if (actual.length + expected.length < 200_000) {
    assert.equal(actual.toString("latin1"), expected.toString("latin1"), what);
    return;
  }
  let i = 0;
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++;
  assert.ok(actual.equals(expected), `${what}: ${actual.length} bytes stored, ${expected.length} expected, first difference at ${i}`);
}

/**
 * Asserts that a Maildir file is exactly trace headers + `body`, and that the Received id is the queue
 * id of a transaction the server logged as accepted. Returns that id.
 */
function assertStored(server: TestServer, file: string, trace: Trace, body: Buffer | string): string {
  const content = fs.readFileSync(file);
  const m = traceHeaders(trace).exec(content.toString("utf8"));
  assert.ok(m, `trace headers of ${path.basename(file)} do not match ${JSON.stringify(trace)}:\n${content.toString("utf8").slice(0, 500)}`);
  const headBytes = Buffer.byteLength(m[0]);
  // Stored with LF line ends: the body as sent, every CRLF as LF.
  const sent = Buffer.isBuffer(body) ? body : Buffer.from(body);
  assertSameBytes(content.subarray(headBytes), Buffer.from(sent.toString("latin1").replace(/\r\n/g, "\n"), "latin1"), `content of ${path.basename(file)}`);
  const id = m[1]!;
  assert.ok(
    server.logLines().some((l) => l.msg === "transaction" && l.id === id && String(l.result).startsWith("250 ")),
    `no accepted transaction ${id} in the log`,
  );
  return id;
}

/** The one message a mailbox received since `before` (its earlier file names). */
function newMessage(server: TestServer, address: string, before: readonly string[]): string {
  const added = server.mailbox(address).filter((f) => !before.includes(f));
  assert.equal(added.length, 1, `${address} should have received exactly one new message, got ${added.length}`);
  return added[0]!;
}

/** Polls the server log for a line containing `text` (log lines are written asynchronously). */
async function waitForLog(server: TestServer, text: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!server.logs().includes(text)) {
    if (Date.now() > deadline) assert.fail(`server log never contained ${JSON.stringify(text)}:\n${server.logs()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const USERS = [
  ["alice@localhost", "alice-pw", "Alice Liddell"],
  ["bob@example.test", "bob-pw", "Bob Example"],
  ["carol@localhost", "carol-pw"],
] as const;

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-interop-"));
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("Python smtplib", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: USERS });
    const r = server.petrel(["list", "add", "team@localhost", "alice@localhost", "carol@localhost", "far@remote.test"]);
    assert.equal(r.status, 0, r.stderr);
  });
  after(async () => {
    await server.stop();
  });

  test("EHLO: esmtp_features lists the extensions Petrel offers", async (t) => {
    if (!requireTool(t, "python3")) return;
    const r = await python<{ code: number; features: Record<string, string> }>(
      server,
      `
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.python.test", timeout=10)
code, _ = s.ehlo()
features = dict(s.esmtp_features)
s.quit()
print(json.dumps({"code": code, "features": features}))
`,
    );
    assert.equal(r.code, 250);
    for (const ext of ["pipelining", "size", "8bitmime", "enhancedstatuscodes", "smtputf8", "chunking"])
      assert.ok(ext in r.features, `smtplib did not see ${ext} in ${JSON.stringify(r.features)}`);
    assert.equal(r.features.size, String(10 * 1024 * 1024));
  });

  test("sendmail(): the unknown recipient is refused with 550, both users get the exact bytes", async (t) => {
    if (!requireTool(t, "python3")) return;
    const aliceBefore = server.mailbox("alice@localhost");
    const bobBefore = server.mailbox("bob@example.test");
    // smtplib turns the LF line ends of a str message into CRLF before sending.
    const message = "From: Py <py@client.test>\nTo: alice@localhost, bob@example.test\nSubject: smtplib sendmail\n\nfirst line\n\tindented line\nlast line\n";
    const r = await python<{ refused: Record<string, [number, string]> }>(
      server,
      `
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.python.test", timeout=10)
refused = s.sendmail("py@client.test", ["alice@localhost", "nobody@localhost", "bob@example.test"], sys.argv[2])
s.quit()
print(json.dumps({"refused": {k: [c, m.decode()] for k, (c, m) in refused.items()}}))
`,
      message,
    );
    assert.deepEqual(r.refused, {
      "nobody@localhost": [550, "5.1.1 <nobody@localhost>: Recipient address rejected: User unknown"],
    });
    const sent = message.replace(/\n/g, "\r\n");
    const idA = assertStored(server, newMessage(server, "alice@localhost", aliceBefore), { sender: "py@client.test", helo: "client.python.test", protocol: "ESMTP", rcpt: "alice@localhost" }, sent);
    const idB = assertStored(server, newMessage(server, "bob@example.test", bobBefore), { sender: "py@client.test", helo: "client.python.test", protocol: "ESMTP", rcpt: "bob@example.test" }, sent);
    assert.equal(idA, idB, "one transaction, one queue id");
    assert.deepEqual(server.mailbox("nobody@localhost"), []);
  });

  test("send_message() with SMTPUTF8: a UTF-8 sender to a UTF-8 alias of a local user", async (t) => {
    if (!requireTool(t, "python3")) return;
    // Mailbox names are kept to a safe ASCII set, so a user jürgen@ cannot exist...
    const refused = server.petrel(["user", "add", "jürgen@example.test", "--password-stdin"], "pw\n");
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /Cannot use jürgen@example\.test as a mailbox/);
    // ...but an alias may have a UTF-8 local part (RFC 6531), and it delivers to an ASCII mailbox.
    const added = server.petrel(["alias", "add", "jürgen@example.test", "bob@example.test"]);
    assert.equal(added.status, 0, added.stderr);
    const bobBefore = server.mailbox("bob@example.test");
    // smtplib adds SMTPUTF8 itself when an address is non-ASCII, so with mail_options=["SMTPUTF8"]
    // it sends "MAIL FROM:<...> SIZE=n SMTPUTF8 SMTPUTF8 BODY=8BITMIME". The script also prints the
    // bytes smtplib sends, produced the way send_message() does (RFC 6532 UTF-8 headers, CRLF).
    const r = await python<{ refused: Record<string, unknown>; sent: string }>(
      server,
      `
import base64, email.generator, io, json, smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "Grüße <grüße@absender.test>"
m["To"] = "Jürgen <jürgen@example.test>"
m["Subject"] = "Grüße aus Köln"
m.set_content("Hallo Jürgen,\\nviele Grüße\\n")
buf = io.BytesIO()
email.generator.BytesGenerator(buf, policy=m.policy.clone(utf8=True)).flatten(m, linesep="\\r\\n")
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.python.test", timeout=10)
refused = s.send_message(m, mail_options=["SMTPUTF8"])
s.quit()
print(json.dumps({"refused": {k: list(v) for k, v in refused.items()}, "sent": base64.b64encode(buf.getvalue()).decode()}))
`,
    );
    assert.deepEqual(r.refused, {});
    const sent = Buffer.from(r.sent, "base64");
    assert.ok(sent.includes(Buffer.from("Subject: Grüße aus Köln\r\n")), "smtplib sent raw UTF-8 headers");
    assertStored(
      server,
      newMessage(server, "bob@example.test", bobBefore),
      { sender: "grüße@absender.test", helo: "client.python.test", protocol: "UTF8SMTP", rcpt: "jürgen@example.test" },
      sent,
    );
  });

  test("verify() and expn()", async (t) => {
    if (!requireTool(t, "python3")) return;
    const r = await python<Record<string, [number, string]>>(
      server,
      `
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.python.test", timeout=10)
out = {}
for name, call in [("vrfy_alice", lambda: s.verify("alice@localhost")), ("vrfy_carol", lambda: s.verify("carol")),
                   ("vrfy_nobody", lambda: s.verify("nobody@localhost")), ("expn_team", lambda: s.expn("team@localhost")),
                   ("expn_alice", lambda: s.expn("alice@localhost"))]:
    code, msg = call()
    out[name] = [code, msg.decode()]
s.quit()
print(json.dumps(out))
`,
    );
    assert.deepEqual(r, {
      vrfy_alice: [250, "2.1.5 Alice Liddell <alice@localhost>"],
      vrfy_carol: [250, "2.1.5 <carol@localhost>"],
      vrfy_nobody: [550, "5.1.1 <nobody@localhost>: User unknown"],
      // smtplib joins the lines of a multi-line reply with "\n".
      expn_team: [250, "2.1.5 Alice Liddell <alice@localhost>\n2.1.5 <carol@localhost>\n2.1.5 <far@remote.test>"],
      expn_alice: [550, "5.1.0 That is a user name, not a mailing list"],
    });
  });

  test("lines starting with '.' are dot-stuffed by smtplib and stored unstuffed", async (t) => {
    if (!requireTool(t, "python3")) return;
    const before = server.mailbox("carol@localhost");
    const message = "Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\n. space after\r\nend\r\n";
    const r = await python<{ refused: Record<string, unknown> }>(
      server,
      `
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.python.test", timeout=10)
refused = s.sendmail("dots@client.test", ["carol@localhost"], sys.argv[2].encode())
s.quit()
print(json.dumps({"refused": refused}))
`,
      message,
    );
    assert.deepEqual(r.refused, {});
    assertStored(server, newMessage(server, "carol@localhost", before), { sender: "dots@client.test", helo: "client.python.test", protocol: "ESMTP", rcpt: "carol@localhost" }, message);
  });

  test("noop(), rset() in a transaction, quit()", async (t) => {
    if (!requireTool(t, "python3")) return;
    const before = server.mailbox("alice@localhost");
    const r = await python<Record<string, [number, string]>>(
      server,
      `
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.python.test", timeout=10)
s.ehlo()
out = {}
for name, call in [("noop", s.noop), ("mail", lambda: s.mail("x@client.test")), ("rcpt", lambda: s.rcpt("alice@localhost")),
                   ("rset", s.rset), ("data_after_rset", lambda: s.docmd("DATA")), ("quit", s.quit)]:
    code, msg = call()
    out[name] = [code, msg.decode()]
print(json.dumps(out))
`,
    );
    assert.deepEqual(r, {
      noop: [250, "2.0.0 Ok"],
      mail: [250, "2.1.0 Ok"],
      rcpt: [250, "2.1.5 Ok"],
      rset: [250, "2.0.0 Ok"],
      data_after_rset: [503, "5.5.1 Error: need MAIL command"],
      quit: [221, "2.0.0 Bye"],
    });
    assert.deepEqual(server.mailbox("alice@localhost"), before, "RSET dropped the transaction");
  });
});

describe("curl (SMTP mode)", () => {
  let server: TestServer;
  let url: string;
  before(async () => {
    server = await startTestServer({ users: USERS });
    const r = server.petrel(["list", "add", "team@localhost", "alice@localhost", "carol@localhost", "far@remote.test"]);
    assert.equal(r.status, 0, r.stderr);
    // curl sends the URL path as its EHLO name.
    url = `smtp://127.0.0.1:${server.smtpPort}/curl.client.test`;
  });
  after(async () => {
    await server.stop();
  });

  test("upload of a CRLF file is stored byte-exact", async (t) => {
    if (!requireTool(t, "curl")) return;
    const message = "From: c@client.test\r\nTo: alice@localhost\r\nSubject: curl crlf\r\n\r\nline 1\r\n.dot line\r\n\r\nlast line\r\n";
    const file = path.join(tmp, "crlf.eml");
    fs.writeFileSync(file, message);
    const before = server.mailbox("alice@localhost");
    const r = await runTool("curl", ["-sS", url, "--mail-from", "c@client.test", "--mail-rcpt", "alice@localhost", "-T", file]);
    assert.equal(r.status, 0, r.stderr);
    assertStored(server, newMessage(server, "alice@localhost", before), { sender: "c@client.test", helo: "curl.client.test", protocol: "ESMTP", rcpt: "alice@localhost" }, message);
  });

  test("upload of an LF-only file (curl sends bare LFs) is stored with CRLF line ends", async (t) => {
    if (!requireTool(t, "curl")) return;
    const message = "From: c@client.test\nTo: alice@localhost\nSubject: curl lf\n\nline 1\nline 2\n";
    const file = path.join(tmp, "lf.eml");
    fs.writeFileSync(file, message);
    const before = server.mailbox("alice@localhost");
    const r = await runTool("curl", ["-sS", url, "--mail-from", "c@client.test", "--mail-rcpt", "alice@localhost", "-T", file]);
    assert.equal(r.status, 0, r.stderr);
    // The upload does not end in CRLF, so curl ends the data with "\r\n.\r\n": the last bare LF and
    // that CRLF make an empty last line. Bare LFs are normalised to CRLF ([smtp] bare_line_endings).
    const expected = message.replace(/\n/g, "\r\n") + "\r\n";
    assertStored(server, newMessage(server, "alice@localhost", before), { sender: "c@client.test", helo: "curl.client.test", protocol: "ESMTP", rcpt: "alice@localhost" }, expected);
  });

  test("unknown recipient: curl exits 55 and the server logged the 550", async (t) => {
    if (!requireTool(t, "curl")) return;
    const file = path.join(tmp, "unknown.eml");
    fs.writeFileSync(file, "Subject: nobody\r\n\r\nhello\r\n");
    const r = await runTool("curl", ["-sS", url, "--mail-from", "c@client.test", "--mail-rcpt", "nobody@localhost", "-T", file]);
    assert.equal(r.status, 55, `curl exit ${r.status}: ${r.stderr}`);
    assert.match(r.stderr, /RCPT failed: 550/);
    await waitForLog(server, "550 5.1.1 <nobody@localhost>: Recipient address rejected: User unknown");
  });

  test("no upload: curl sends VRFY and prints the display name", async (t) => {
    if (!requireTool(t, "curl")) return;
    const r = await runTool("curl", ["-sS", url, "--mail-rcpt", "alice@localhost"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "250 2.1.5 Alice Liddell <alice@localhost>\r\n");
  });

  test("-X EXPN on a list prints one member per line", async (t) => {
    if (!requireTool(t, "curl")) return;
    // curl sends "EXPN team@localhost SMTPUTF8" to a server that offers SMTPUTF8 (RFC 6531).
    const r = await runTool("curl", ["-sS", url, "--mail-rcpt", "team@localhost", "-X", "EXPN"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "250-2.1.5 Alice Liddell <alice@localhost>\r\n250-2.1.5 <carol@localhost>\r\n250 2.1.5 <far@remote.test>\r\n");
  });
});

/** What swaks says it sent: the EHLO/HELO name and the DATA lines (dot-stuffing removed). */
function swaksTranscript(out: string): { helo: string; commands: string[]; data: string } {
  const lines = out.split(/\r?\n/);
  const helo = /^ -> (?:EHLO|HELO) (.+)$/m.exec(out)?.[1] ?? assert.fail(`no EHLO/HELO in swaks output:\n${out}`);
  const start = lines.findIndex((l) => l.startsWith("<-  354 "));
  assert.ok(start >= 0, `no 354 in swaks output:\n${out}`);
  const data: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (!l.startsWith(" -> ")) continue;
    const text = l.slice(4);
    if (text === ".") break;
    data.push(text.startsWith(".") ? text.slice(1) : text);
  }
  const commands = lines.slice(0, start + 1).filter((l) => l.startsWith(" -> ") || l.startsWith("<-  ") || l.startsWith("<** "));
  return { helo, commands, data: data.map((l) => l + "\r\n").join("") };
}

describe("swaks", () => {
  let server: TestServer;
  let serverArg: string;
  before(async () => {
    server = await startTestServer({ users: USERS });
    serverArg = `127.0.0.1:${server.smtpPort}`;
  });
  after(async () => {
    await server.stop();
  });

  test("a plain message is delivered with exactly the lines swaks sent", async (t) => {
    if (!requireTool(t, "swaks")) return;
    const before = server.mailbox("alice@localhost");
    const r = await runTool("swaks", ["--server", serverArg, "--to", "alice@localhost", "--from", "x@y.test"]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const sent = swaksTranscript(r.stdout);
    assert.match(sent.data, /\r\n\r\nThis is a test mailing\r\n/);
    assertStored(server, newMessage(server, "alice@localhost", before), { sender: "x@y.test", helo: sent.helo, protocol: "ESMTP", rcpt: "alice@localhost" }, sent.data);
  });

  test("--pipeline: MAIL, RCPT and DATA go out in one batch and the message is delivered", async (t) => {
    if (!requireTool(t, "swaks")) return;
    const before = server.mailbox("carol@localhost");
    const r = await runTool("swaks", ["--server", serverArg, "--to", "carol@localhost", "--from", "x@y.test", "--pipeline"]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const sent = swaksTranscript(r.stdout);
    const mail = sent.commands.findIndex((l) => l.startsWith(" -> MAIL FROM:"));
    assert.deepEqual(sent.commands.slice(mail), [
      " -> MAIL FROM:<x@y.test>",
      " -> RCPT TO:<carol@localhost>",
      " -> DATA",
      "<-  250 2.1.0 Ok",
      "<-  250 2.1.5 Ok",
      "<-  354 End data with <CR><LF>.<CR><LF>",
    ]);
    assertStored(server, newMessage(server, "carol@localhost", before), { sender: "x@y.test", helo: sent.helo, protocol: "ESMTP", rcpt: "carol@localhost" }, sent.data);
  });

  test("--body with a line starting with '.' is stored unstuffed", async (t) => {
    if (!requireTool(t, "swaks")) return;
    const before = server.mailbox("alice@localhost");
    const r = await runTool("swaks", ["--server", serverArg, "--to", "alice@localhost", "--from", "x@y.test", "--body", ".leading dot\n..two dots\nlast"]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ -> \.\.leading dot$/m, "swaks dot-stuffed the line");
    const sent = swaksTranscript(r.stdout);
    assert.match(sent.data, /\r\n\r\n\.leading dot\r\n\.\.two dots\r\nlast\r\n/);
    assertStored(server, newMessage(server, "alice@localhost", before), { sender: "x@y.test", helo: sent.helo, protocol: "ESMTP", rcpt: "alice@localhost" }, sent.data);
  });

  test("--to a non-local domain: 554 5.7.1 and swaks exits non-zero", async (t) => {
    if (!requireTool(t, "swaks")) return;
    const r = await runTool("swaks", ["--server", serverArg, "--to", "someone@remote.test", "--from", "x@y.test"]);
    assert.notEqual(r.status, 0);
    assert.match(r.stdout, /^<\*\* 554 5\.7\.1 <someone@remote\.test>: Relay access denied$/m);
    assert.deepEqual(fs.existsSync(path.join(server.dataDir, "queue", "envelopes")) ? fs.readdirSync(path.join(server.dataDir, "queue", "envelopes")) : [], [], "nothing was queued for the relay");
  });

  test("a 1 MB attachment arrives byte-exact", async (t) => {
    if (!requireTool(t, "swaks")) return;
    const payload = crypto.randomBytes(1024 * 1024);
    const file = path.join(tmp, "payload.bin");
    fs.writeFileSync(file, payload);
    const before = server.mailbox("bob@example.test");
    const r = await runTool("swaks", ["--server", serverArg, "--to", "bob@example.test", "--from", "x@y.test", "--attach", `@${file}`], { timeoutMs: 60_000 });
    assert.equal(r.status, 0, r.stderr + r.stdout.slice(-2000));
    const sent = swaksTranscript(r.stdout);
    assert.ok(sent.data.length > 1_400_000, `swaks sent ${sent.data.length} bytes`);
    const stored = newMessage(server, "bob@example.test", before);
    assertStored(server, stored, { sender: "x@y.test", helo: sent.helo, protocol: "ESMTP", rcpt: "bob@example.test" }, sent.data);
    // And the attachment decodes to the very bytes of the file.
    const text = fs.readFileSync(stored, "latin1");
    const m = /Content-Transfer-Encoding: BASE64\n\n([A-Za-z0-9+/=\n]+?)\n--/i.exec(text);
    assert.ok(m, "base64 attachment part not found");
    assert.ok(Buffer.from(m[1]!.replace(/\n/g, ""), "base64").equals(payload), "decoded attachment differs from the file");
  });

  test("--protocol SMTP says HELO, and Received says 'with SMTP'", async (t) => {
    if (!requireTool(t, "swaks")) return;
    const before = server.mailbox("alice@localhost");
    const r = await runTool("swaks", ["--server", serverArg, "--to", "alice@localhost", "--from", "x@y.test", "--protocol", "SMTP"]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ -> HELO /m);
    assert.doesNotMatch(r.stdout, /^ -> EHLO /m);
    const sent = swaksTranscript(r.stdout);
    assertStored(server, newMessage(server, "alice@localhost", before), { sender: "x@y.test", helo: sent.helo, protocol: "SMTP", rcpt: "alice@localhost" }, sent.data);
  });
});
