// Proves parts of helpers/tls-tools.ts that the TLS interop tests (tls-interop, pop3-tls) do not
// show on their own: curl and fetchmail over plain SMTP/POP3 of the real `petrel serve`, and
// opensslClient's parsing against a Node TLS server on loopback, including a refused version.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { requireTool } from "./helpers/tools.js";
import { curl, fetchmail, opensslClient, swaks } from "./helpers/tls-tools.js";

const USERS = [
  ["swaks@localhost", "swaks-pw"],
  ["msmtp@localhost", "msmtp-pw"],
  ["curl@localhost", "curl-pw"],
  ["fetch@localhost", "fetch-pw"],
  ["py@localhost", "py-pw"],
] as const;

const message = (subject: string) => `From: t@client.test\r\nSubject: ${subject}\r\n\r\nbody of ${subject}\r\n`;

describe("tls-tools wrappers against plain SMTP and POP3", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: USERS });
  });
  after(async () => {
    await server.stop();
  });

  test("curl uploads over SMTP and lists over POP3", async (t) => {
    if (!requireTool(t, "curl")) return;
    const sent = await curl(
      [`smtp://127.0.0.1:${server.smtpPort}/curl.client.test`, "--mail-from", "t@client.test", "--mail-rcpt", "curl@localhost", "-T", "-"],
      message("curl plain"),
    );
    assert.equal(sent.status, 0, sent.stderr);
    assert.equal(server.mailbox("curl@localhost").length, 1);
    const list = await curl([`pop3://curl%40localhost:curl-pw@127.0.0.1:${server.pop3Port}/`]);
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /^1 \d+\r\n$/);
    // --ssl-reqd: curl goes on only after STLS, which the server offers (its generated certificate).
    const reqd = await curl(["--ssl-reqd", `pop3://curl%40localhost:curl-pw@127.0.0.1:${server.pop3Port}/`]);
    assert.equal(reqd.status, 0, reqd.stderr);
    assert.equal(reqd.stdout, list.stdout);
  });

  test("fetchmail fetches through its MDA from a 0600 rc file", async (t) => {
    if (!requireTool(t, "fetchmail") || !requireTool(t, "swaks")) return;
    for (const n of [1, 2]) {
      const sent = await swaks(["--server", `127.0.0.1:${server.smtpPort}`, "--from", "t@client.test", "--to", "fetch@localhost", "--header", `Subject: for fetchmail ${n}`]);
      assert.equal(sent.status, 0, sent.stdout);
    }
    // sslproto '': plain POP3 (allowed from loopback); pop3-tls.test.ts uses fetchmail's default STLS.
    const r = await fetchmail({ port: server.pop3Port!, user: "fetch@localhost", password: "fetch-pw", keep: true, options: "sslproto ''" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(r.messages.length, 2);
    assert.match(r.messages[0]!, /^Subject: for fetchmail 1$/m);
    assert.match(r.messages[1]!, /^Subject: for fetchmail 2$/m);
    const wrong = await fetchmail({ port: server.pop3Port!, user: "fetch@localhost", password: "wrong", keep: true, options: "sslproto ''" });
    assert.equal(wrong.status, 3, `fetchmail exit 3 is an authentication failure:\n${wrong.stdout}${wrong.stderr}`);
    assert.deepEqual(wrong.messages, []);
  });

});

describe("opensslClient", () => {
  let dir: string;
  let cert: string;
  let server: tls.Server;
  let port: number;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-sclient-"));
    // A test certificate made by the tool under test's own family; Petrel itself never shells out.
    const gen = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=mx.petrel.test", "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem")], { encoding: "utf8" });
    if (gen.status !== 0) throw new Error(`openssl req failed: ${gen.stderr}`);
    cert = fs.readFileSync(path.join(dir, "cert.pem"), "utf8");
    server = tls.createServer({ cert, key: fs.readFileSync(path.join(dir, "key.pem")), minVersion: "TLSv1.2" }, (s) => {
      s.end("hello over tls\r\n");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("returns the served certificate, the protocol and the cipher", async (t) => {
    if (!requireTool(t, "openssl")) return;
    const r = await opensslClient({ port });
    assert.deepEqual(r.certificates, [cert]);
    assert.equal(r.protocol, "TLSv1.3");
    assert.match(r.cipher ?? "", /^TLS_/);
    const v12 = await opensslClient({ port, versionFlag: "-tls1_2" });
    assert.equal(v12.protocol, "TLSv1.2");
  });

  test("a refused version leaves no certificate and no protocol", async (t) => {
    if (!requireTool(t, "openssl")) return;
    // OpenSSL 3 at its default security level cannot even offer TLS 1.1; either way no handshake.
    const r = await opensslClient({ port, versionFlag: "-tls1_1" });
    assert.notEqual(r.status, 0);
    assert.deepEqual(r.certificates, []);
    assert.equal(r.protocol, undefined);
  });

});
