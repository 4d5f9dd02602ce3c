// Which certificate Petrel serves, end to end (issue 8): the configured one (checked with openssl
// s_client -starttls smtp, an outside client), swapped by SIGHUP without dropping connections, kept
// when the new file is bad; and, without [tls], a self-signed one generated once and reused.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { RawSmtp } from "./helpers/smtp-client.js";
import { makeTestCert, type TestCert } from "./helpers/tls-cert.js";
import { opensslClient } from "./helpers/tls-tools.js";

function fileFingerprint(certFile: string): string {
  return new crypto.X509Certificate(fs.readFileSync(certFile)).fingerprint256;
}

/** The fingerprint and protocol openssl s_client sees after STARTTLS on an SMTP port. */
async function opensslStartTls(port: number): Promise<{ fingerprint: string; protocol: string }> {
  const r = await opensslClient({ port, starttls: "smtp", servername: "mx.petrel.test" });
  assert.ok(r.certificates[0], `no certificate from openssl:\n${r.stdout}\n${r.stderr}`);
  return { fingerprint: new crypto.X509Certificate(r.certificates[0]).fingerprint256, protocol: r.protocol ?? "" };
}

/** The fingerprint a node:tls client sees on an implicit-TLS port. */
async function implicitFingerprint(port: number): Promise<string> {
  const s = tls.connect({ port, host: "127.0.0.1", rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => s.once("secureConnect", resolve).once("error", reject));
  const fp = s.getPeerX509Certificate()!.fingerprint256;
  s.destroy();
  return fp;
}

describe("a configured certificate", () => {
  let server: TestServer;
  let dir: string;
  let first: TestCert;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-certs-"));
    first = makeTestCert(dir);
    server = await startTestServer({ toml: first.toml, listeners: ["submission", "submissions"] });
  });
  after(async () => {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("is the one served on every TLS port, with TLS 1.2 or newer", async () => {
    const want = fileFingerprint(first.cert);
    const seen = await opensslStartTls(server.smtpPort);
    assert.equal(seen.fingerprint, want);
    assert.match(seen.protocol, /^TLSv1\.[23]$/);
    assert.equal((await opensslStartTls(server.port("submission"))).fingerprint, want);
    assert.equal(await implicitFingerprint(server.port("submissions")), want);
  });

  test("SIGHUP swaps it for new handshakes without dropping an open connection; a bad file keeps the old one", async () => {
    const before = fileFingerprint(first.cert);
    // A session over TLS that stays open across the reload.
    const open = await RawSmtp.connectTls(server.port("submissions"));
    assert.equal((await open.reply()).code, 220);
    // certbot's deploy hook writes the renewed files in place, then signals.
    const renewed = makeTestCert(dir, "mx.petrel.test", "renewed");
    fs.copyFileSync(renewed.cert, first.cert);
    fs.copyFileSync(renewed.key, first.key);
    const after = fileFingerprint(first.cert);
    assert.notEqual(after, before);
    server.process.kill("SIGHUP");
    // serve logs "reloaded: ..." after the certificates were re-read; the swap logs what is served now.
    await server.waitForLog((l) => typeof l.msg === "string" && l.msg.startsWith("reloaded"));
    assert.ok(server.logLines().some((l) => l.msg === "TLS certificate served" && l.fingerprint256 === after), "the new certificate is logged");
    assert.equal(await implicitFingerprint(server.port("submissions")), after);
    assert.equal((await opensslStartTls(server.smtpPort)).fingerprint, after);
    assert.equal((await open.command("NOOP")).code, 250, "the open session survived the reload");
    open.close();

    // A broken file on reload: logged, and the running certificate stays.
    fs.writeFileSync(first.cert, "not a certificate\n");
    const errorsBefore = server.logLines().filter((l) => l.level === 50).length;
    server.process.kill("SIGHUP");
    const deadline = Date.now() + 5000;
    while (server.logLines().filter((l) => l.level === 50).length === errorsBefore) {
      if (Date.now() > deadline) throw new Error(`no error logged for the bad certificate:\n${server.logs()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(await implicitFingerprint(server.port("submissions")), after);
    fs.copyFileSync(renewed.cert, first.cert);
  });
});

describe("without [tls]", () => {
  test("a self-signed certificate for hostname is generated on first start and reused after a restart", async (t) => {
    const first = await startTestServer({ listeners: ["submissions"], keepDir: true });
    t.after(() => fs.rmSync(first.dir, { recursive: true, force: true }));
    const fp1 = await implicitFingerprint(first.port("submissions"));
    const seen = await opensslStartTls(first.smtpPort);
    assert.equal(seen.fingerprint, fp1);
    const s = tls.connect({ port: first.port("submissions"), host: "127.0.0.1", rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => s.once("secureConnect", resolve).once("error", reject));
    const cert = s.getPeerX509Certificate()!;
    s.destroy();
    assert.match(cert.subjectAltName ?? "", /DNS:mx\.petrel\.test/);
    await first.stop();

    const second = await startTestServer({ dir: first.dir, listeners: ["submissions"], keepDir: true });
    try {
      assert.equal(await implicitFingerprint(second.port("submissions")), fp1, "the certificate changed across a restart");
    } finally {
      await second.stop();
    }
  });
});
