// End-to-end tests of POP3 over TLS (RFC 2595 STLS on `pop3`, implicit TLS on `pop3s`, RFC 8314) against
// the real `petrel serve` with an openssl-made certificate and pop3.plaintext_login = "never", so a
// login only works if the client really is on TLS. Driven by Python's poplib, fetchmail (default STLS),
// openssl s_client, curl, and raw sockets with node:tls for the bytes around the handshake.
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { once } from "node:events";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { RawPop3 } from "./helpers/pop3-client.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { RawSmtp } from "./helpers/smtp-client.js";
import { makeTestCert, type TestCert } from "./helpers/tls-cert.js";
import { curl, fetchmail, opensslClient, pythonPop } from "./helpers/tls-tools.js";
import { requireTool } from "./helpers/tools.js";

const TLS_REQUIRED = "-ERR [AUTH] TLS required: use STLS (or port 995) before logging in";
const CAPA_TAIL = "UIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nEXPIRE NEVER\r\nIMPLEMENTATION Petrel\r\n";

function tools(t: TestContext, ...names: string[]): boolean {
  return names.every((n) => requireTool(t, n));
}

/** One message to a local user over plain SMTP on the smtp port (pipelined: PIPELINING is offered). */
async function deliver(port: number, to: string, subject: string): Promise<void> {
  const c = await RawSmtp.connect(port);
  try {
    assert.equal((await c.reply()).code, 220);
    assert.equal((await c.command("EHLO client.test")).code, 250);
    c.write(`MAIL FROM:<sender@example.test>\r\nRCPT TO:<${to}>\r\nDATA\r\n`);
    for (const code of [250, 250, 354]) assert.equal((await c.reply()).code, code);
    c.write(`From: sender@example.test\r\nTo: ${to}\r\nSubject: ${subject}\r\n\r\nbody of ${subject}\r\n.\r\nQUIT\r\n`);
    for (const code of [250, 221]) assert.equal((await c.reply()).code, code);
  } finally {
    c.close();
  }
}

/**
 * poplib: CAPA and a USER refused in plaintext, stls() with the unverified context of tls-tools, CAPA
 * again, then USER/PASS, STAT, LIST, RETR. The peer certificate's SHA-256 is reported.
 */
const POPLIB_STLS = `
import hashlib
user, password = sys.argv[2], sys.argv[3]
p = connect("plain")
out = {"capa_before": sorted(p.capa().keys())}
try:
    p.user(user)
    out["plain_user"] = "accepted"
except poplib.error_proto as e:
    out["plain_user"] = e.args[0].decode()
out["stls"] = p.stls(context=ctx).decode()
out["capa_after"] = sorted(p.capa().keys())
out["tls"] = p.sock.version()
out["fingerprint"] = hashlib.sha256(p.sock.getpeercert(binary_form=True)).hexdigest()
p.user(user)
out["pass"] = p.pass_(password).decode()
out["stat"] = list(p.stat())
out["list"] = [l.decode() for l in p.list()[1]]
out["retr"] = b"\\r\\n".join(p.retr(1)[1]).decode()
out["quit"] = p.quit().decode()
print(json.dumps(out))
`;

/** POP3_SSL on the implicit-TLS port: login, LIST, RETR. */
const POPLIB_SSL = `
import hashlib
user, password = sys.argv[2], sys.argv[3]
p = connect("ssl")
out = {"welcome": p.getwelcome().decode(), "capa": sorted(p.capa().keys()), "tls": p.sock.version()}
out["fingerprint"] = hashlib.sha256(p.sock.getpeercert(binary_form=True)).hexdigest()
out["user"] = p.user(user).decode()
out["pass"] = p.pass_(password).decode()
out["list"] = [l.decode() for l in p.list()[1]]
out["retr"] = b"\\r\\n".join(p.retr(2)[1]).decode()
out["quit"] = p.quit().decode()
print(json.dumps(out))
`;

interface StlsRun {
  capa_before: string[];
  plain_user: string;
  stls: string;
  capa_after: string[];
  tls: string;
  fingerprint: string;
  pass: string;
  stat: number[];
  list: string[];
  retr: string;
  quit: string;
}

interface SslRun {
  welcome: string;
  capa: string[];
  tls: string;
  fingerprint: string;
  user: string;
  pass: string;
  list: string[];
  retr: string;
  quit: string;
}

function fingerprintHex(pem: string | Buffer): string {
  return new crypto.X509Certificate(pem).fingerprint256.replace(/:/g, "").toLowerCase();
}

/** The client side of the handshake over an open plaintext client (after +OK to STLS, or at once on pop3s). */
async function handshake(socket: net.Socket): Promise<RawPop3> {
  const secure = tls.connect({ socket, rejectUnauthorized: false, servername: "mx.petrel.test" });
  await once(secure, "secureConnect");
  return RawPop3.over(secure);
}

async function connectPop3s(port: number): Promise<{ client: RawPop3; greeting: string }> {
  const secure = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, servername: "mx.petrel.test" });
  await once(secure, "secureConnect");
  const client = RawPop3.over(secure);
  return { client, greeting: await client.line() };
}

describe("POP3 over TLS end to end: STLS, POP3S and plaintext_login = never", () => {
  let server: TestServer;
  let certDir: string;
  let cert: TestCert;
  let pop3: number;
  let pop3s: number;

  before(async () => {
    certDir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-pop3-tls-"));
    cert = makeTestCert(certDir);
    server = await startTestServer({
      listeners: ["pop3s"],
      users: [["alice@example.test", "alice-pw"]],
      toml: `${cert.toml}[pop3]\nplaintext_login = "never"\nauth_failure_delay = 0\n`,
    });
    pop3 = server.port("pop3");
    pop3s = server.port("pop3s");
    for (const subject of ["first", "second"]) await deliver(server.smtpPort, "alice@example.test", subject);
    assert.equal(server.mailbox("alice@example.test").length, 2);
  });

  after(async () => {
    await server.stop();
    fs.rmSync(server.dir, { recursive: true, force: true });
    fs.rmSync(certDir, { recursive: true, force: true });
  });

  test("raw: CAPA shows STLS and no USER/SASL before TLS; USER is refused; after STLS CAPA shows USER and SASL PLAIN", async () => {
    const { client } = await RawPop3.open(pop3);
    assert.equal((await client.multiCommand("CAPA")).body.toString(), "TOP\r\nSTLS\r\n" + CAPA_TAIL);
    assert.equal(await client.command("USER alice@example.test"), TLS_REQUIRED, "never: refused even on loopback");
    assert.equal(await client.command("AUTH PLAIN " + Buffer.from("\0alice@example.test\0alice-pw").toString("base64")), TLS_REQUIRED);
    assert.equal(await client.command("STLS"), "+OK Begin TLS negotiation");
    const secure = await handshake(client.socket);
    assert.equal((await secure.multiCommand("CAPA")).body.toString(), "TOP\r\nUSER\r\nSASL PLAIN\r\n" + CAPA_TAIL);
    assert.equal(await secure.command("STLS"), "-ERR Command not permitted when TLS active");
    assert.equal(await secure.command("USER alice@example.test"), "+OK send PASS");
    assert.equal(await secure.command("PASS alice-pw"), "+OK alice@example.test has 2 messages (" + totalSize(server) + " octets)");
    assert.equal(await secure.command("QUIT"), "+OK Petrel POP3 server signing off (2 messages left)");
    await secure.waitClosed();
    assert.ok(!server.logs().includes("alice-pw"), "the password never reaches the log");
  });

  test("raw: STLS and CAPA pipelined: CAPA is discarded, never answered after the handshake", async () => {
    const { client } = await RawPop3.open(pop3);
    client.write("STLS\r\nCAPA\r\n");
    assert.equal(await client.line(), "+OK Begin TLS negotiation");
    const secure = await handshake(client.socket);
    // The first reply over TLS must be QUIT's: had CAPA been kept, its list would come first.
    assert.equal(await secure.command("QUIT"), "+OK Petrel POP3 server signing off");
    await secure.waitClosed();
    assert.equal(secure.pending, "");
    const started = await server.waitForLog((l) => l.msg === "TLS started" && l.listener === "pop3" && l.discarded_plaintext === 6);
    assert.ok(started, "the discarded 6 bytes (CAPA CRLF) are logged");
  });

  test("raw: pop3s speaks TLS at once; CAPA has no STLS; plaintext on pop3s is a failed handshake", async () => {
    const { client, greeting } = await connectPop3s(pop3s);
    assert.match(greeting, /^\+OK Petrel POP3 server ready </);
    assert.equal((await client.multiCommand("CAPA")).body.toString(), "TOP\r\nUSER\r\nSASL PLAIN\r\n" + CAPA_TAIL);
    assert.equal(await client.command("STLS"), "-ERR Command not permitted when TLS active");
    assert.equal(await client.command("QUIT"), "+OK Petrel POP3 server signing off");
    await client.waitClosed();

    const plain = await RawPop3.connect(pop3s);
    plain.write("CAPA\r\n");
    await plain.waitClosed();
    assert.equal(plain.pending, "", "no POP3 reply in plaintext on pop3s");
    assert.ok(await server.waitForLog((l) => l.msg === "TLS handshake failed" && l.listener === "pop3s"));
  });

  test("poplib: stls() with an unverified context, then user/pass_, STAT, LIST, RETR; the configured certificate is served", async (t) => {
    if (!tools(t, "python3")) return;
    const r = await pythonPop<StlsRun>(pop3, POPLIB_STLS, "alice@example.test", "alice-pw");
    assert.ok(r.capa_before.includes("STLS"));
    assert.ok(!r.capa_before.includes("USER"));
    assert.equal(r.plain_user, TLS_REQUIRED);
    assert.equal(r.stls, "+OK Begin TLS negotiation");
    assert.ok(!r.capa_after.includes("STLS"));
    assert.ok(r.capa_after.includes("USER") && r.capa_after.includes("SASL"));
    assert.match(r.tls, /^TLSv1\.[23]$/);
    assert.equal(r.fingerprint, fingerprintHex(fs.readFileSync(cert.cert)));
    assert.match(r.pass, /^\+OK alice@example\.test has 2 messages/);
    assert.equal(r.stat[0], 2);
    assert.equal(r.list.length, 2);
    assert.match(r.retr, /Subject: first\r\n\r\nbody of first$/);
    assert.match(r.quit, /^\+OK Petrel POP3 server signing off/);
  });

  test("poplib: POP3_SSL on pop3s: login, LIST and RETR", async (t) => {
    if (!tools(t, "python3")) return;
    const r = await pythonPop<SslRun>(pop3s, POPLIB_SSL, "alice@example.test", "alice-pw");
    assert.match(r.welcome, /^\+OK Petrel POP3 server ready /);
    assert.ok(!r.capa.includes("STLS"));
    assert.match(r.tls, /^TLSv1\.[23]$/);
    assert.equal(r.fingerprint, fingerprintHex(fs.readFileSync(cert.cert)));
    assert.equal(r.user, "+OK send PASS");
    assert.match(r.pass, /^\+OK alice@example\.test has 2 messages/);
    assert.equal(r.list.length, 2);
    assert.match(r.retr, /Subject: second\r\n\r\nbody of second$/);
  });

  test("fetchmail with its default STLS fetches both messages (login works only over TLS here)", async (t) => {
    if (!tools(t, "fetchmail")) return;
    const before = server.logLines().filter((l) => l.msg === "TLS started" && l.listener === "pop3").length;
    // No ssl or sslproto option: fetchmail's default, STLS when offered. The certificate is self-signed.
    const r = await fetchmail({ port: pop3, user: "alice@example.test", password: "alice-pw", keep: true, options: "no sslcertck" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.deepEqual(r.messages.map((m) => /Subject: (\w+)/.exec(m)![1]), ["first", "second"]);
    assert.ok(await server.waitForLog((l) => l.msg === "pop3 session" && l.user === "alice@example.test" && l.retrieved === 2 && l.tls !== null));
    assert.equal(server.logLines().filter((l) => l.msg === "TLS started" && l.listener === "pop3").length, before + 1, "fetchmail did STLS");
  });

  test("openssl s_client -starttls pop3 shows the configured certificate, TLS 1.3 by default and TLS 1.2 on request", async (t) => {
    if (!tools(t, "openssl")) return;
    const expected = fingerprintHex(fs.readFileSync(cert.cert));
    for (const [versionFlag, protocol] of [[undefined, "TLSv1.3"], ["-tls1_2", "TLSv1.2"]] as const) {
      const r = await opensslClient({ port: pop3, starttls: "pop3", servername: "mx.petrel.test", ...(versionFlag ? { versionFlag } : {}) });
      assert.equal(r.certificates.length, 1, `s_client printed the certificate:\n${r.stdout}\n${r.stderr}`);
      assert.equal(fingerprintHex(r.certificates[0]!), expected);
      assert.equal(r.protocol, protocol);
    }
  });

  test("curl: pop3s:// with -k, and pop3:// with --ssl-reqd (STLS), list and retrieve", async (t) => {
    if (!tools(t, "curl")) return;
    const implicit = await curl([`pop3s://alice%40example.test:alice-pw@127.0.0.1:${pop3s}/`]);
    assert.equal(implicit.status, 0, implicit.stderr);
    assert.equal(implicit.stdout.trim().split("\r\n").length, 2);
    const upgraded = await curl(["--ssl-reqd", `pop3://alice%40example.test:alice-pw@127.0.0.1:${pop3}/1`]);
    assert.equal(upgraded.status, 0, upgraded.stderr);
    assert.match(upgraded.stdout, /Subject: first\r\n\r\nbody of first\r\n$/);
  });
});

/** What STAT counts for alice: the CRLF sizes in the Maildir names. */
function totalSize(server: TestServer): number {
  return server.mailbox("alice@example.test").reduce((n, f) => n + Number(/,W=(\d+)/.exec(f)![1]), 0);
}
