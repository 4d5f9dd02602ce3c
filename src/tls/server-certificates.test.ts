// Unit tests for the server certificates: a configured pair (its chain served whole over a real loopback
// handshake), the one-line errors naming the bad file, the generated certificate kept across starts and
// replaced when hostname changes, SIGHUP reloads (good and bad files), and the TLS options every port uses.
// Fixtures are made at test time with selfsigned (EC keys: fast); no private key is committed.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { generate } from "selfsigned";
import { UsageError } from "../core/errors.js";
import { LoopbackTls } from "../testing/tls-loopback.js";
import { SERVER_TLS_OPTIONS, ServerCertificates } from "./server-certificates.js";

const DAY_MS = 24 * 60 * 60 * 1000;

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-certs-"));
  dirs.push(dir);
  return dir;
}

function capturingLog() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
      done();
    },
  });
  const log = pino({ level: "info" }, sink);
  return { log, lines, at: (level: "info" | "warn" | "error") => lines.filter((l) => l.level === { info: 30, warn: 40, error: 50 }[level]).map((l) => l.msg) };
}

interface Pem {
  cert: string;
  key: string;
}

/** An EC certificate for host, self-signed or signed by ca, valid from..to (days from now). */
async function makeCert(host: string, opts: { ca?: Pem; isCa?: boolean; fromDays?: number; toDays?: number } = {}): Promise<Pem> {
  const notBeforeDate = new Date(Date.now() + (opts.fromDays ?? -1) * DAY_MS);
  const notAfterDate = new Date(Date.now() + (opts.toDays ?? 90) * DAY_MS);
  const pems = await generate([{ name: "commonName", value: host }], {
    keyType: "ec",
    algorithm: "sha256",
    notBeforeDate,
    notAfterDate,
    extensions: opts.isCa
      ? [
          { name: "basicConstraints", cA: true, critical: true },
          { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
        ]
      : [
          { name: "basicConstraints", cA: false },
          { name: "subjectAltName", altNames: [{ type: 2, value: host }] },
        ],
    ...(opts.ca ? { ca: { key: opts.ca.key, cert: opts.ca.cert } } : {}),
  });
  return { cert: pems.cert, key: pems.private };
}

function writePair(dir: string, name: string, cert: string, key: string) {
  const files = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  fs.writeFileSync(files.cert, cert);
  fs.writeFileSync(files.key, key);
  return files;
}

async function servedChain(certs: ServerCertificates): Promise<readonly string[]> {
  const loopback = await LoopbackTls.start(certs);
  try {
    const hs = await loopback.handshake();
    hs.client.destroy();
    return hs.chain;
  } finally {
    await loopback.close();
  }
}

function fingerprintOf(pem: string): string {
  return new crypto.X509Certificate(pem).fingerprint256;
}

test("a configured pair loads (also from one cert+key file): summary and one info line name it, no warning when it covers hostname", async () => {
  const dir = tempDir();
  const pem = await makeCert("mail.test");
  const files = writePair(dir, "server", pem.cert, pem.key);
  const { log, lines, at } = capturingLog();
  const certs = await ServerCertificates.open({ ...files, hostname: "mail.test", dataDir: dir }, log);
  const s = certs.summary;
  assert.equal(s.source, "configured");
  assert.equal(s.subject, "CN=mail.test");
  assert.deepEqual(s.altNames, ["DNS:mail.test"]);
  assert.equal(s.fingerprint256, fingerprintOf(pem.cert));
  assert.equal(s.certFile, files.cert);
  assert.equal(s.keyFile, files.key);
  assert.ok(Math.abs(Date.parse(s.notAfter) - (Date.now() + 90 * DAY_MS)) < 2 * DAY_MS);
  const served = lines.find((l) => l.msg === "TLS certificate served");
  assert.deepEqual({ ...served, time: 0, pid: 0, hostname: "" }, {
    level: 30, time: 0, pid: 0, hostname: "", msg: "TLS certificate served", source: "configured", subject: "CN=mail.test",
    alt_names: ["DNS:mail.test"], not_after: s.notAfter, fingerprint256: s.fingerprint256, chain_length: 1, cert_file: files.cert,
  });
  assert.deepEqual(at("warn"), []);
  assert.deepEqual(await servedChain(certs), [s.fingerprint256]);
  assert.equal(fs.existsSync(path.join(dir, "tls")), false, "nothing generated when [tls] is set");

  // One file holding certificate and key (as HAProxy wants it), with CRLF line ends: the same certificate.
  const both = path.join(dir, "both.pem");
  fs.writeFileSync(both, (pem.cert + pem.key).replace(/\r?\n/g, "\r\n"));
  const combined = await ServerCertificates.open({ cert: both, key: both, hostname: "mail.test", dataDir: dir }, capturingLog().log);
  assert.equal(combined.summary.fingerprint256, s.fingerprint256);
});

test("a chain in tls.cert is served whole, even cat'ed without a newline between: the client sees the certificate and its issuer", async () => {
  const dir = tempDir();
  const ca = await makeCert("Petrel Test CA", { isCa: true });
  const leaf = await makeCert("mail.test", { ca });
  const files = writePair(dir, "fullchain", leaf.cert.trimEnd() + ca.cert, leaf.key);
  const { log, at } = capturingLog();
  const certs = await ServerCertificates.open({ ...files, hostname: "mail.test", dataDir: dir }, log);
  assert.deepEqual(await servedChain(certs), [fingerprintOf(leaf.cert), fingerprintOf(ca.cert)]);
  assert.deepEqual(at("warn"), []);
});

test("a CA-issued certificate without its chain, or a chain out of order, is served with a warning", async () => {
  const dir = tempDir();
  const ca = await makeCert("Petrel Test CA", { isCa: true });
  const leaf = await makeCert("mail.test", { ca });
  const alone = capturingLog();
  await ServerCertificates.open({ ...writePair(dir, "cert", leaf.cert, leaf.key), hostname: "mail.test", dataDir: dir }, alone.log);
  assert.deepEqual(alone.at("warn"), [
    "the TLS certificate file holds no chain (the issuer's certificate is missing; with Let's Encrypt use fullchain.pem): many clients will refuse it",
  ]);
  const stranger = await makeCert("Another CA", { isCa: true });
  const wrong = capturingLog();
  await ServerCertificates.open({ ...writePair(dir, "wrong", leaf.cert + stranger.cert + ca.cert, leaf.key), hostname: "mail.test", dataDir: dir }, wrong.log);
  assert.deepEqual(wrong.at("warn"), [
    "certificate 2 in the TLS certificate file did not issue certificate 1: clients may not build the chain (order: server, intermediates, root)",
    "certificate 3 in the TLS certificate file did not issue certificate 2: clients may not build the chain (order: server, intermediates, root)",
  ]);
});

test("a certificate for another host, or expiring in 3 days, or expired, is served with a warning", async () => {
  const dir = tempDir();
  const soon = await makeCert("other.test", { toDays: 3 });
  const { log, at } = capturingLog();
  await ServerCertificates.open({ ...writePair(dir, "soon", soon.cert, soon.key), hostname: "mail.test", dataDir: dir }, log);
  assert.deepEqual(at("warn"), [
    "the TLS certificate does not name hostname mail.test: clients that check it will refuse it",
    "the TLS certificate expires in 3 day(s)",
  ]);
  const old = await makeCert("mail.test", { fromDays: -30, toDays: -1 });
  const second = capturingLog();
  await ServerCertificates.open({ ...writePair(dir, "old", old.cert, old.key), hostname: "mail.test", dataDir: dir }, second.log);
  assert.deepEqual(second.at("warn"), ["the TLS certificate has expired: clients that check it will refuse it"]);
});

test("bad configured files: a UsageError of one line naming the file at fault", async () => {
  const dir = tempDir();
  const a = await makeCert("mail.test");
  const b = await makeCert("mail.test");
  const open = (files: { cert: string; key: string }) => ServerCertificates.open({ ...files, hostname: "mail.test", dataDir: dir }, capturingLog().log);
  const mismatched = writePair(dir, "mismatched", a.cert, b.key);
  await assert.rejects(open(mismatched), (err: unknown) => {
    assert.ok(err instanceof UsageError);
    assert.equal(err.message, `tls.key ${mismatched.key} does not match the certificate in tls.cert ${mismatched.cert} (the server's own certificate must come first in that file)`);
    return true;
  });
  const notPem = writePair(dir, "notpem", "hello\n", a.key);
  await assert.rejects(open(notPem), { name: "UsageError", message: `tls.cert ${notPem.cert}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)` });
  const keyIsCert = writePair(dir, "keyiscert", a.cert, a.cert);
  await assert.rejects(open(keyIsCert), { name: "UsageError", message: `tls.key ${keyIsCert.key}: no PEM private key in it (expected -----BEGIN PRIVATE KEY-----)` });
  const badKey = writePair(dir, "badkey", a.cert, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  await assert.rejects(open(badKey), (err: unknown) => err instanceof UsageError && err.message.startsWith(`tls.key ${badKey.key}: the private key cannot be parsed (`) && !err.message.includes("\n"));
  const encrypted = writePair(dir, "encrypted", a.cert, crypto.createPrivateKey(a.key).export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "x" }).toString());
  await assert.rejects(open(encrypted), { name: "UsageError", message: `tls.key ${encrypted.key}: the key is encrypted; Petrel needs it without a passphrase` });
  const missing = { cert: path.join(dir, "none.crt"), key: a.key };
  await assert.rejects(open(missing), { name: "UsageError", message: `tls.cert ${missing.cert}: cannot read it (ENOENT)` });
});

test("generated: made once for hostname (0600 files in a 0700 folder), reused after a restart, said so in the log", async () => {
  const dir = tempDir();
  const first = capturingLog();
  const a = await ServerCertificates.open({ hostname: "mail.test", dataDir: dir }, first.log);
  assert.equal(a.summary.source, "generated");
  assert.deepEqual(a.summary.altNames, ["DNS:mail.test"]);
  assert.equal(a.summary.certFile, path.join(dir, "tls", "selfsigned.crt"));
  const days = (Date.parse(a.summary.notAfter) - Date.now()) / DAY_MS;
  assert.ok(days > 824 && days <= 825, `valid for 825 days (Apple's limit), got ${days}`);
  assert.equal(fs.statSync(path.join(dir, "tls")).mode & 0o777, 0o700);
  assert.equal(fs.statSync(a.summary.certFile).mode & 0o777, 0o600);
  assert.equal(fs.statSync(a.summary.keyFile).mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(path.join(dir, "tls")).sort(), ["selfsigned.crt", "selfsigned.key"], "no temporary file left");
  assert.deepEqual(first.at("info").slice(0, 1), ["generating a self-signed TLS certificate (first start)"]);
  assert.equal(first.at("warn").filter((m) => m.includes("mail clients will not verify it")).length, 1);
  assert.deepEqual(await servedChain(a), [a.summary.fingerprint256]);

  const second = capturingLog();
  const b = await ServerCertificates.open({ hostname: "mail.test", dataDir: dir }, second.log);
  assert.equal(b.summary.fingerprint256, a.summary.fingerprint256);
  assert.ok(second.at("info").includes(`using the self-signed certificate generated on ${new Date().toISOString().slice(0, 10)}`));
  assert.equal(second.at("warn").filter((m) => m.includes("mail clients will not verify it")).length, 1);
});

test("generated: a changed hostname, or a key that no longer matches, gets a new certificate and the reason logged", async () => {
  const dir = tempDir();
  const a = await ServerCertificates.open({ hostname: "mail.test", dataDir: dir }, capturingLog().log);
  const { log, lines } = capturingLog();
  const b = await ServerCertificates.open({ hostname: "mx.test", dataDir: dir }, log);
  assert.notEqual(b.summary.fingerprint256, a.summary.fingerprint256);
  assert.deepEqual(b.summary.altNames, ["DNS:mx.test"]);
  const why = lines.find((l) => l.msg === "generating a new self-signed TLS certificate");
  assert.equal(why?.reason, "it was made for DNS:mail.test, hostname is now mx.test");

  const other = await makeCert("mx.test");
  fs.writeFileSync(b.summary.keyFile, other.key); // as if a crash fell between the two renames
  const third = capturingLog();
  const c = await ServerCertificates.open({ hostname: "mx.test", dataDir: dir }, third.log);
  assert.notEqual(c.summary.fingerprint256, b.summary.fingerprint256);
  assert.match(String(third.lines.find((l) => l.msg === "generating a new self-signed TLS certificate")?.reason), /^generated key .* does not match/);
});

test("reload: new files are served to the next handshake; unchanged files change nothing", async () => {
  const dir = tempDir();
  const one = await makeCert("mail.test");
  const files = writePair(dir, "server", one.cert, one.key);
  const { log, at } = capturingLog();
  const certs = await ServerCertificates.open({ ...files, hostname: "mail.test", dataDir: dir }, log);
  const loopback = await LoopbackTls.start(certs);
  try {
    const before = await loopback.handshake();
    assert.deepEqual(before.chain, [fingerprintOf(one.cert)]);
    assert.equal(certs.reload(), false);
    assert.ok(at("info").includes("TLS certificate unchanged"));

    const two = await makeCert("mail.test");
    writePair(dir, "server", two.cert, two.key);
    assert.equal(certs.reload(), true);
    assert.equal(certs.summary.fingerprint256, fingerprintOf(two.cert));
    const after = await loopback.handshake();
    assert.deepEqual(after.chain, [fingerprintOf(two.cert)]);
    assert.equal(before.client.destroyed, false, "a connection made before the reload stays up");
    before.client.destroy();
    after.client.destroy();
  } finally {
    await loopback.close();
  }
});

test("reload with a broken file: false, the old certificate still served, the error logged", async () => {
  const dir = tempDir();
  const one = await makeCert("mail.test");
  const files = writePair(dir, "server", one.cert, one.key);
  const { log, lines } = capturingLog();
  const certs = await ServerCertificates.open({ ...files, hostname: "mail.test", dataDir: dir }, log);
  const loopback = await LoopbackTls.start(certs);
  try {
    const other = await makeCert("mail.test");
    for (const [cert, key, error] of [
      ["-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n", one.key, `tls.cert ${files.cert}: certificate 1 cannot be parsed`],
      [other.cert, one.key, `tls.key ${files.key} does not match the certificate in tls.cert ${files.cert}`],
      [one.cert, "", `tls.key ${files.key}: no PEM private key in it`],
    ] as const) {
      writePair(dir, "server", cert, key);
      lines.length = 0;
      assert.equal(certs.reload(), false);
      const logged = lines.filter((l) => l.level === 50);
      assert.equal(logged.length, 1);
      assert.equal(logged[0]!.msg, "TLS certificate not reloaded: the running certificate stays");
      assert.ok(String(logged[0]!.error).startsWith(error), String(logged[0]!.error));
      const hs = await loopback.handshake();
      assert.deepEqual(hs.chain, [fingerprintOf(one.cert)]);
      hs.client.destroy();
    }
    fs.rmSync(files.cert);
    assert.equal(certs.reload(), false, "a missing file is refused too");
    assert.equal(certs.summary.fingerprint256, fingerprintOf(one.cert));
  } finally {
    await loopback.close();
  }
});

test("TLS options: the server's cipher order wins, TLS 1.1 is refused, TLS 1.2 renegotiation is refused", async () => {
  assert.equal(SERVER_TLS_OPTIONS.minVersion, "TLSv1.2");
  const dir = tempDir();
  const pem = await makeCert("mail.test");
  const certs = await ServerCertificates.open({ ...writePair(dir, "server", pem.cert, pem.key), hostname: "mail.test", dataDir: dir }, capturingLog().log);
  const loopback = await LoopbackTls.start(certs);
  try {
    // For TLS 1.2 Node's default list puts AES-128-GCM before AES-256-GCM; a client preferring 256 gets 128.
    const hs = await loopback.handshake({ maxVersion: "TLSv1.2", ciphers: "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256" });
    assert.equal(hs.client.getCipher().name, "ECDHE-ECDSA-AES128-GCM-SHA256");
    hs.server.resume();
    const renegotiated = await new Promise<Error | null>((resolve) => {
      hs.client.once("error", resolve); // the server's no_renegotiation alert arrives as the client writes
      if (!hs.client.renegotiate({}, (err) => resolve(err))) resolve(new Error("renegotiate not started"));
      hs.client.write("NOOP\r\n");
    });
    assert.match(String(renegotiated?.message), /no renegotiation/, "the server refuses a renegotiation");
    hs.client.destroy();
    await assert.rejects(loopback.handshake({ minVersion: "TLSv1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" }));
  } finally {
    await loopback.close();
  }
});
