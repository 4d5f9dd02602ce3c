// Shared by the relay's end-to-end tests: wait for a condition, and submit a message as
// alice@example.test with AUTH on the smtp port (the test servers allow AUTH before TLS on loopback).
import assert from "node:assert/strict";
import type { TestServer } from "./server.js";
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
