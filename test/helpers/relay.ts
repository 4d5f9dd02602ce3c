// Shared by the relay's end-to-end tests: wait for a condition, submit a message as alice@example.test
// with AUTH on the smtp port (the test servers allow AUTH before TLS on loopback), and start the usual
// world: a scriptable sink as far.test's MX on 127.0.0.2, a loopback DNS server, a relaying server.
import assert from "node:assert/strict";
import { SmtpSink, type SinkScript } from "../../src/testing/smtp-sink.js";
import type { Zone } from "../../src/testing/dns-server.js";
import { startDnsServer, type DnsServer } from "./dns-server.js";
import { startTestServer, type TestServer } from "./server.js";
import { RawSmtp } from "./smtp-client.js";

export async function eventually<T>(what: string, f: () => T | undefined | null | false, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Sends one message from alice@example.test (password "pw") and returns its queue id. */
export async function submit(server: TestServer, to: readonly string[], subject: string, mailParams = ""): Promise<string> {
  const c = await RawSmtp.connect(server.smtpPort);
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.command("EHLO client.test")).code, 250);
  assert.equal((await c.command(`AUTH PLAIN ${Buffer.from("\0alice@example.test\0pw").toString("base64")}`)).code, 235);
  assert.equal((await c.command(`MAIL FROM:<alice@example.test>${mailParams}`)).code, 250);
  for (const t of to) assert.equal((await c.command(`RCPT TO:<${t}>`)).code, 250);
  assert.equal((await c.command("DATA")).code, 354);
  c.write(`From: alice@example.test\r\nSubject: ${subject}\r\n\r\nhello ${subject}\r\n.\r\n`);
  const r = await c.reply();
  assert.equal(r.code, 250, r.raw);
  c.close();
  return /queued as (\w+)/.exec(r.raw)![1]!;
}

/** A sink on 127.0.0.2 as far.test's MX (loopback DNS), and a server relaying to it; alice@example.test may submit. */
export interface RelayWorld {
  readonly sink: SmtpSink;
  readonly dns: DnsServer;
  readonly server: TestServer;
  close(): Promise<void>;
}

export const FAR_TEST_ZONE: Zone = { "far.test": { MX: [[10, "mx.far.test"]] }, "mx.far.test": { A: ["127.0.0.2"] } };

/** Starts the sink, the DNS server (far.test plus `zone`) and a server that retries every second. */
export async function startRelayWorld(script: SinkScript, zone: Zone = {}): Promise<RelayWorld> {
  const sink = await SmtpSink.start(script, "127.0.0.2");
  const dns = await startDnsServer({ ...FAR_TEST_ZONE, ...zone });
  const server = await startTestServer({
    dns: `127.0.0.1:${dns.port}`,
    toml: `[smtp]\nauth_without_tls = "loopback"\n[delivery]\nmx_port = ${sink.port}\nretry_schedule = [1]\nqueue_run_interval = 1\n`,
    users: [["alice@example.test", "pw"]],
  });
  return {
    sink,
    dns,
    server,
    async close() {
      await server.stop();
      await sink.close();
      await dns.close();
    },
  };
}
