// SMTP submission with clients nobody here wrote (issue 8): Python smtplib (starttls, SMTP_SSL,
// login), swaks (--tls, --tlsc, --auth LOGIN/PLAIN), msmtp (STARTTLS on 587, implicit TLS on 465),
// curl (smtps://, --ssl-reqd) and openssl s_client. Each sends to a local user and to a remote address
// (queued), and none relays without AUTH on any port. The delivered bytes are checked in the Maildir.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { makeTestCert } from "./helpers/tls-cert.js";
import { requireTool } from "./helpers/tools.js";
import { curl, msmtp, opensslClient, pythonSmtp, swaks } from "./helpers/tls-tools.js";

const USER = "alice@example.test";
const PASSWORD = "s3cret pass";

describe("SMTP over TLS with real clients", () => {
  let server: TestServer;
  let certDir: string;
  let submission: number;
  let submissions: number;
  before(async () => {
    certDir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-interop-"));
    server = await startTestServer({
      toml: makeTestCert(certDir).toml,
      listeners: ["submission", "submissions"],
      users: [[USER, PASSWORD], ["bob@example.test", "bob-pw"]],
    });
    submission = server.port("submission");
    submissions = server.port("submissions");
  });
  after(async () => {
    await server.stop();
    fs.rmSync(certDir, { recursive: true, force: true });
  });

  /** The stored copy in bob's Maildir whose Subject is this, or undefined. */
  const bobCopy = (subject: string) =>
    server
      .mailbox("bob@example.test")
      .map((f) => fs.readFileSync(f, "utf8"))
      .find((t) => t.includes(`\nSubject: ${subject}\n`));

  /** Queued message files (not their JSON envelopes) that hold this text. */
  const queued = (text: string) =>
    fs
      .readdirSync(path.join(server.dataDir, "queue"), { recursive: true })
      .map(String)
      .filter((f) => !f.endsWith(".json"))
      .map((f) => path.join(server.dataDir, "queue", f))
      .filter((f) => fs.statSync(f).isFile() && fs.readFileSync(f, "utf8").includes(text));

  test("python smtplib: starttls + login on 587 and SMTP_SSL + login on 465, to a local and a remote address", async (t) => {
    if (!requireTool(t, "python3")) return;
    const result = await pythonSmtp<{ before: string[]; after: string[]; refused: Record<string, unknown>; ssl: Record<string, unknown>; bad: number }>(
      submission,
      `
s = connect()
s.ehlo()
before = sorted(s.esmtp_features.keys())
s.starttls(context=ctx)
s.ehlo()
after = sorted(s.esmtp_features.keys())
s.login(sys.argv[2], sys.argv[3])
refused = s.sendmail(sys.argv[2], ["bob@example.test", "friend@remote.test"], "Subject: smtplib 587\\r\\n\\r\\nover starttls\\r\\n")
s.quit()
s = smtplib.SMTP_SSL("127.0.0.1", int(sys.argv[4]), context=ctx, timeout=15)
s.login(sys.argv[2], sys.argv[3])
ssl_refused = s.sendmail(sys.argv[2], ["bob@example.test"], "Subject: smtplib 465\\r\\n\\r\\nover implicit tls\\r\\n")
s.quit()
s = smtplib.SMTP_SSL("127.0.0.1", int(sys.argv[4]), context=ctx, timeout=15)
try:
    s.login(sys.argv[2], "wrong")
    bad = 0
except smtplib.SMTPAuthenticationError as e:
    bad = e.smtp_code
print(json.dumps({"before": before, "after": after, "refused": refused, "ssl": ssl_refused, "bad": bad}))
`,
      USER,
      PASSWORD,
      submissions,
    );
    assert.ok(result.before.includes("starttls") && !result.before.includes("auth"), JSON.stringify(result.before));
    assert.ok(result.after.includes("auth") && !result.after.includes("starttls"), JSON.stringify(result.after));
    assert.deepEqual(result.refused, {});
    assert.deepEqual(result.ssl, {});
    assert.equal(result.bad, 535);
    assert.match(bobCopy("smtplib 587") ?? "", /with ESMTPSA id \w+\n\tfor <bob@example\.test>;[\s\S]*\nSubject: smtplib 587\nDate: .*\nMessage-ID: <.*@mx\.petrel\.test>\n\nover starttls\n$/);
    assert.match(bobCopy("smtplib 465") ?? "", /\nover implicit tls\n$/);
    assert.equal(queued("Subject: smtplib 587").length, 1, "the remote copy waits in the queue");
  });

  test("swaks: --tls with AUTH LOGIN on 587, --tlsc with AUTH PLAIN on 465, and plain STARTTLS on 25", async (t) => {
    if (!requireTool(t, "swaks")) return;
    const login = await swaks(["--server", `127.0.0.1:${submission}`, "--tls", "--auth", "LOGIN", "--auth-user", USER, "--auth-password", PASSWORD, "--from", USER, "--to", "bob@example.test,far@remote.test", "--header", "Subject: swaks login"]);
    assert.equal(login.status, 0, login.stdout);
    assert.match(login.stdout, /<~ {2}235 2\.7\.0 Authentication successful/);
    const plain = await swaks(["--server", `127.0.0.1:${submissions}`, "--tlsc", "--auth", "PLAIN", "--auth-user", USER, "--auth-password", PASSWORD, "--from", USER, "--to", "bob@example.test", "--header", "Subject: swaks plain"]);
    assert.equal(plain.status, 0, plain.stdout);
    const mx = await swaks(["--server", `127.0.0.1:${server.smtpPort}`, "--tls", "--from", "someone@client.test", "--to", "bob@example.test", "--header", "Subject: swaks mx"]);
    assert.equal(mx.status, 0, mx.stdout);
    assert.ok(bobCopy("swaks login") && bobCopy("swaks plain"));
    assert.match(bobCopy("swaks mx") ?? "", /with ESMTPS id /);
    assert.equal(queued("Subject: swaks login").length, 1);
    // A wrong password: swaks reports the 535 and exits non-zero.
    const bad = await swaks(["--server", `127.0.0.1:${submission}`, "--tls", "--auth", "PLAIN", "--auth-user", USER, "--auth-password", "nope", "--from", USER, "--to", "bob@example.test"]);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stdout, /<~\* 535 5\.7\.8 Error: authentication failed/);
  });

  test("no port relays without AUTH: 554 5.7.1 on 25 (also over TLS), 530 5.7.0 on 587 and 465", async (t) => {
    if (!requireTool(t, "swaks")) return;
    const cases: [string[], RegExp][] = [
      [["--server", `127.0.0.1:${server.smtpPort}`], /<[~*]\* 554 5\.7\.1 <victim@remote\.test>: Relay access denied/],
      [["--server", `127.0.0.1:${server.smtpPort}`, "--tls"], /<[~*]\* 554 5\.7\.1 <victim@remote\.test>: Relay access denied/],
      [["--server", `127.0.0.1:${submission}`, "--tls"], /<[~*]\* 530 5\.7\.0 Authentication required/],
      [["--server", `127.0.0.1:${submissions}`, "--tlsc"], /<[~*]\* 530 5\.7\.0 Authentication required/],
    ];
    for (const [args, expected] of cases) {
      const r = await swaks([...args, "--from", "spammer@client.test", "--to", "victim@remote.test"]);
      assert.notEqual(r.status, 0);
      assert.match(r.stdout, expected);
    }
    assert.deepEqual(queued("victim@remote.test"), []);
  });

  test("msmtp: STARTTLS on 587 and implicit TLS on 465 (--tls-starttls=off), with a password", async (t) => {
    if (!requireTool(t, "msmtp")) return;
    for (const [port, extra, subject] of [
      [submission, [], "msmtp 587"],
      [submissions, ["--tls-starttls=off"], "msmtp 465"],
    ] as const) {
      const r = await msmtp(
        ["--host=127.0.0.1", `--port=${port}`, "--tls=on", ...extra, "--auth=on", `--user=${USER}`, `--from=${USER}`, "bob@example.test", "pal@remote.test"],
        `From: ${USER}\r\nTo: bob@example.test\r\nSubject: ${subject}\r\n\r\nsent by msmtp\r\n`,
        { password: PASSWORD },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.match(bobCopy(subject) ?? "", /\nsent by msmtp\n$/);
      assert.equal(queued(`Subject: ${subject}`).length, 1);
    }
    const bad = await msmtp(["--host=127.0.0.1", `--port=${submission}`, "--tls=on", "--auth=on", `--user=${USER}`, `--from=${USER}`, "bob@example.test"], "Subject: x\r\n\r\nx\r\n", { password: "nope" });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /535 5\.7\.8/);
  });

  test("curl: smtps:// on 465 and smtp:// --ssl-reqd on 587, with --user", async (t) => {
    if (!requireTool(t, "curl")) return;
    for (const [url, subject] of [
      [`smtps://127.0.0.1:${submissions}`, "curl 465"],
      [`smtp://127.0.0.1:${submission}`, "curl 587"],
    ] as const) {
      const r = await curl(
        [url, "--ssl-reqd", "--user", `${USER}:${PASSWORD}`, "--mail-from", USER, "--mail-rcpt", "bob@example.test", "--mail-rcpt", "buddy@remote.test", "-T", "-"],
        `Subject: ${subject}\r\n\r\nsent by curl\r\n`,
      );
      assert.equal(r.status, 0, r.stderr);
      assert.match(bobCopy(subject) ?? "", /\nsent by curl\n$/);
      assert.equal(queued(`Subject: ${subject}`).length, 1);
    }
  });

  test("openssl s_client -starttls smtp: the configured certificate, TLS 1.2 and 1.3, never 1.1", async (t) => {
    if (!requireTool(t, "openssl")) return;
    const v13 = await opensslClient({ port: submission, starttls: "smtp", servername: "mx.petrel.test" });
    assert.equal(v13.protocol, "TLSv1.3", v13.stdout);
    assert.equal(v13.certificates.length, 1);
    const v12 = await opensslClient({ port: server.smtpPort, starttls: "smtp", versionFlag: "-tls1_2" });
    assert.equal(v12.protocol, "TLSv1.2", v12.stdout);
    const v11 = await opensslClient({ port: server.smtpPort, starttls: "smtp", versionFlag: "-tls1_1" });
    assert.equal(v11.protocol, undefined);
    assert.deepEqual(v11.certificates, []);
  });
});
