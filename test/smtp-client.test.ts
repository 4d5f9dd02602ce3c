// End-to-end tests of the outbound SMTP client (src/smtp-client/) against real servers on loopback:
// Postfix's smtp-sink (a real remote MX: pipelining, 8BITMIME on and off, hard and soft refusals) and
// a real `petrel serve` (opportunistic STARTTLS on port 25, AUTH over STARTTLS on submission).
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { SmtpClientConnection, type ClientOptions, type OutboundMessage } from "../src/smtp-client/smtp-client-connection.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { makeTestCert } from "./helpers/tls-cert.js";
import { requireTool } from "./helpers/tools.js";

function message(content: string, recipients: readonly string[], more: Partial<OutboundMessage> = {}): OutboundMessage {
  const body = Buffer.from(content, "utf8");
  return { sender: "cron@petrel.test", recipients, size: body.length, eightBit: false, smtpUtf8: false, open: async function* () {
    yield body;
  }, ...more };
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Debian installs it in /usr/sbin, which is not on an ordinary user's PATH. */
const SMTP_SINK = fs.existsSync("/usr/sbin/smtp-sink") ? "/usr/sbin/smtp-sink" : "smtp-sink";

interface PostfixSink {
  readonly port: number;
  readonly dumps: () => string[];
  stop(): Promise<void>;
}

/** Starts /usr/sbin/smtp-sink (as nobody when we are root) dumping each message into a fresh folder. */
async function startPostfixSink(flags: readonly string[]): Promise<PostfixSink> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-smtp-sink-"));
  fs.chmodSync(dir, 0o777);
  const port = await freePort();
  const root = process.getuid?.() === 0 ? ["-u", "nobody"] : [];
  const child: ChildProcess = spawn(SMTP_SINK, [...root, ...flags, "-d", `${dir}/%M.`, `127.0.0.1:${port}`, "10"], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    dumps: () => fs.readdirSync(dir).sort().map((f) => fs.readFileSync(path.join(dir, f), "utf8")),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const MX: ClientOptions = { helo: "out.petrel.test", security: "opportunistic" };

describe("against Postfix's smtp-sink", () => {
  const started: PostfixSink[] = [];
  after(async () => {
    for (const s of started) await s.stop();
  });
  async function sink(t: TestContext, flags: readonly string[] = []): Promise<PostfixSink | null> {
    if (!requireTool(t, SMTP_SINK)) return null;
    const s = await startPostfixSink(flags);
    started.push(s);
    return s;
  }

  test("pipelined delivery of two messages over one connection; dots unstuffed by the sink", async (t) => {
    const s = await sink(t);
    if (!s) return;
    const c = await SmtpClientConnection.connect("sink.test", "127.0.0.1", s.port, MX);
    assert.ok(c.extensions.has("PIPELINING"));
    const a = await c.send(message("Subject: one\r\n\r\n.starts with a dot\r\n..two\r\n.\r\nend\r\n", ["a@remote.test", "b@remote.test"]));
    const b = await c.send(message("Subject: two\r\n\r\nsecond\r\n", ["c@remote.test"]));
    await c.quit();
    assert.deepEqual([...a.results, ...b.results].map((r) => [r.to, r.kind, r.reply.code]), [["a@remote.test", "sent", 250], ["b@remote.test", "sent", 250], ["c@remote.test", "sent", 250]]);
    await new Promise((r) => setTimeout(r, 100));
    const dumps = s.dumps();
    assert.equal(dumps.length, 2);
    const one = dumps.find((d) => d.includes("Subject: one"))!;
    assert.match(one, /X-Rcpt-Args: <a@remote\.test>/);
    assert.ok(one.replace(/\r\n/g, "\n").includes("Subject: one\n\n.starts with a dot\n..two\n.\nend\n"), one);
  });

  test("no PIPELINING and no 8BITMIME (-P -8): one by one, and 8-bit content bounced 5.6.3 unsent", async (t) => {
    const s = await sink(t, ["-P", "-8"]);
    if (!s) return;
    const c = await SmtpClientConnection.connect("sink.test", "127.0.0.1", s.port, MX);
    assert.equal(c.extensions.has("PIPELINING"), false);
    const eight = await c.send(message("Subject: caf\u00e9\r\n\r\n\u00e9\r\n", ["a@remote.test"], { eightBit: true }));
    const plain = await c.send(message("Subject: ascii\r\n\r\nok\r\n", ["a@remote.test"]));
    await c.quit();
    assert.deepEqual([eight.results[0]!.kind, eight.results[0]!.reply.enhanced], ["bounced", "5.6.3"]);
    assert.equal(plain.results[0]!.kind, "sent");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(s.dumps().length, 1);
  });

  test("RCPT hard-refused (-f RCPT) is bounced, soft-refused (-r RCPT) deferred, with the sink's reply", async (t) => {
    const hard = await sink(t, ["-f", "RCPT"]);
    if (!hard) return;
    const soft = await sink(t, ["-r", "RCPT"]);
    if (!soft) return;
    for (const [s, kind, cls] of [[hard, "bounced", 5], [soft, "deferred", 4]] as const) {
      const c = await SmtpClientConnection.connect("sink.test", "127.0.0.1", s.port, MX);
      const out = await c.send(message("Subject: x\r\n\r\nx\r\n", ["a@remote.test"]));
      await c.quit();
      assert.equal(out.results[0]!.kind, kind);
      assert.equal(Math.floor(out.results[0]!.reply.code / 100), cls);
    }
  });
});

describe("against a real petrel serve", () => {
  let server: TestServer;
  let certDir: string;
  before(async () => {
    certDir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-client-tls-"));
    server = await startTestServer({ toml: makeTestCert(certDir).toml, listeners: ["submission"], users: [["alice@example.test", "secret"], ["bob@example.test", "pw"]] });
  });
  after(async () => {
    await server.stop();
    fs.rmSync(certDir, { recursive: true, force: true });
  });

  test("as an MX on port 25: opportunistic STARTTLS, so the Received header says ESMTPS", async () => {
    const c = await SmtpClientConnection.connect("mx.petrel.test", "127.0.0.1", server.smtpPort, MX);
    assert.ok(c.tls, "STARTTLS was used");
    const out = await c.send(message("Subject: via MX\r\n\r\nhello bob\r\n", ["bob@example.test", "nobody@example.test"]));
    await c.quit();
    assert.deepEqual(out.results.map((r) => [r.kind, r.reply.code]), [["sent", 250], ["bounced", 550]]);
    const files = server.mailbox("bob@example.test");
    assert.equal(files.length, 1);
    const copy = fs.readFileSync(files[0]!, "utf8");
    assert.match(copy, / with ESMTPS id /);
    assert.match(copy, /hello bob/);
  });

  test("as a smarthost on submission: STARTTLS then AUTH PLAIN, Received says ESMTPSA; a wrong password is a temporary AUTH error", async () => {
    const opts: ClientOptions = { helo: "out.petrel.test", security: "require-tls", verifyCertificate: false, auth: { user: "alice@example.test", password: "secret" } };
    const c = await SmtpClientConnection.connect("mx.petrel.test", "127.0.0.1", server.port("submission"), opts);
    assert.ok(c.tls);
    const out = await c.send(message("Subject: via smarthost\r\n\r\nfrom cron\r\n", ["bob@example.test"], { sender: "alice@example.test" }));
    await c.quit();
    assert.deepEqual(out.results.map((r) => r.kind), ["sent"]);
    const copy = server.mailbox("bob@example.test").map((f) => fs.readFileSync(f, "utf8")).find((m) => m.includes("via smarthost"));
    assert.match(copy ?? "", / with ESMTPSA id /);
    await assert.rejects(
      SmtpClientConnection.connect("mx.petrel.test", "127.0.0.1", server.port("submission"), { ...opts, auth: { user: "alice@example.test", password: "wrong" } }),
      (e: unknown) => e instanceof Error && "temporary" in e && (e as { temporary: boolean }).temporary && (e as { reply?: { code: number } }).reply?.code === 535,
    );
  });
});
