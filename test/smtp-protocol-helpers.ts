// Shared steps for the end-to-end SMTP protocol and DATA/BDAT tests: reply assertions that also check
// the RFC 3463 enhanced code (RFC 2034 §4: on every line), a greeted session, sending one message,
// and checking a delivered Maildir file byte for byte (Return-Path + Received + content).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { RawSmtp, type RawReply } from "./helpers/smtp-client.js";

export const HOSTNAME = "mx.petrel.test";
export const HELO = "client.test";

/**
 * Reads one reply and checks its code. `enhanced` is the RFC 3463 code every line must start with;
 * null for the replies that carry none (greeting, EHLO/HELO 250, 354). `text` is matched against the
 * text of the last line after the enhanced code.
 */
export async function expectReply(c: RawSmtp, code: number, enhanced: string | null, text?: RegExp, timeoutMs?: number): Promise<RawReply> {
  const r = await c.reply(timeoutMs);
  checkReply(r, code, enhanced, text);
  return r;
}

export function checkReply(r: RawReply, code: number, enhanced: string | null, text?: RegExp): void {
  assert.equal(r.code, code, `expected ${code}${enhanced ? " " + enhanced : ""}, got ${JSON.stringify(r.raw)}`);
  if (enhanced !== null) {
    for (const line of r.lines) {
      assert.ok(line === enhanced || line.startsWith(enhanced + " "), `every line must carry ${enhanced}: ${JSON.stringify(r.raw)}`);
    }
  }
  if (text) {
    const last = r.lines[r.lines.length - 1] ?? "";
    const body = enhanced !== null ? last.slice(enhanced.length).trimStart() : last;
    assert.match(body, text, JSON.stringify(r.raw));
  }
}

/** True when every line of the reply starts with an enhanced code whose class matches the reply code. */
export function hasEnhancedCode(r: RawReply): boolean {
  const cls = String(r.code)[0];
  return r.lines.every((l) => new RegExp(`^${cls}\\.\\d{1,3}\\.\\d{1,3}( |$)`).test(l));
}

export async function command(c: RawSmtp, line: string, code: number, enhanced: string | null, text?: RegExp): Promise<RawReply> {
  c.write(line + "\r\n");
  return expectReply(c, code, enhanced, text);
}

/** Connects, checks the greeting, sends EHLO. */
export async function greeted(port: number, helo = HELO): Promise<RawSmtp> {
  const c = await RawSmtp.connect(port);
  await expectReply(c, 220, null, new RegExp(`^${HOSTNAME.replace(/\./g, "\\.")} ESMTP Petrel$`));
  await command(c, `EHLO ${helo}`, 250, null);
  return c;
}

/** Greeted connections opened by one describe block; closeAll() in its after hook. */
export class Sessions {
  private readonly open: RawSmtp[] = [];

  constructor(private readonly port: () => number) {}

  async greeted(): Promise<RawSmtp> {
    const c = await greeted(this.port());
    this.open.push(c);
    return c;
  }

  closeAll(): void {
    for (const c of this.open.splice(0)) c.close();
  }
}

/** Adds dot-stuffing (RFC 5321 §4.5.2): every line that starts with "." gets another one. */
export function dotStuff(content: Buffer): Buffer {
  const s = content.toString("latin1");
  return Buffer.from((s.startsWith(".") ? "." : "") + s.replace(/\r\n\./g, "\r\n.."), "latin1");
}

/** The stream DATA sends for content (which must be empty or end in CRLF): stuffed, then ".\r\n". */
export function dataStream(content: Buffer): Buffer {
  return Buffer.concat([dotStuff(content), Buffer.from(".\r\n")]);
}

const QUEUED = /^Ok: queued as ([A-Z0-9]+)$/;

/** MAIL, RCPT (each must be accepted), DATA with `content`; returns the queue id from the 250 reply. */
export async function sendMessage(c: RawSmtp, from: string, to: readonly string[], content: Buffer, mailParams = ""): Promise<string> {
  await command(c, `MAIL FROM:<${from}>${mailParams}`, 250, "2.1.0");
  for (const r of to) await command(c, `RCPT TO:<${r}>`, 250, "2.1.5");
  await command(c, "DATA", 354, null);
  c.write(dataStream(content));
  return queuedId(await expectReply(c, 250, "2.0.0", QUEUED));
}

export function queuedId(r: RawReply): string {
  checkReply(r, 250, "2.0.0", QUEUED);
  return QUEUED.exec(r.lines[r.lines.length - 1]!.slice("2.0.0 ".length))![1]!;
}

export interface Expected {
  readonly sender: string;
  readonly rcpt: string;
  readonly id: string;
  readonly content: Buffer;
  readonly helo?: string;
  readonly protocol?: string;
}

const DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d [+-]\d{4}$/;

/**
 * Checks a delivered file is exactly Return-Path, Received (with this id and "for"), then the content
 * as sent; also that its Maildir name carries ",S=<file size>".
 */
export function assertDelivered(file: string, e: Expected): void {
  const bytes = fs.readFileSync(file);
  const text = bytes.toString("latin1");
  const m = /^Return-Path: [^\r\n]*\nReceived: [^\r\n]*\n\t[^\r\n]*\n\t[^\r\n]*;\n\t([^\r\n]*)\n/.exec(text);
  assert.ok(m, `trace headers of ${path.basename(file)}: ${JSON.stringify(text.slice(0, 300))}`);
  const date = m[1]!;
  assert.match(date, DATE);
  assert.ok(Math.abs(Date.parse(date) - Date.now()) < 5 * 60_000, `Received date ${date} is now`);
  const header =
    `Return-Path: <${e.sender}>\r\n` +
    `Received: from ${e.helo ?? HELO} (unknown [127.0.0.1])\r\n` +
    `\tby ${HOSTNAME} (Petrel) with ${e.protocol ?? "ESMTP"} id ${e.id}\r\n` +
    `\tfor <${e.rcpt}>;\r\n` +
    `\t${date}\r\n`;
  // Maildir files have LF line ends: what was sent, with every CRLF stored as LF.
  const expected = lf(Buffer.concat([Buffer.from(header, "utf8"), e.content]));
  if (!bytes.equals(expected)) {
    // Show where they differ instead of two huge buffers.
    let i = 0;
    while (i < bytes.length && i < expected.length && bytes[i] === expected[i]) i++;
    assert.fail(
      `${path.basename(file)} differs at byte ${i} (sizes ${bytes.length} vs expected ${expected.length}): ` +
        `${JSON.stringify(bytes.subarray(Math.max(0, i - 20), i + 40).toString("latin1"))} vs ` +
        `${JSON.stringify(expected.subarray(Math.max(0, i - 20), i + 40).toString("latin1"))}`,
    );
  }
  const s = /,S=(\d+)/.exec(path.basename(file));
  assert.ok(s, `Maildir name has ,S=: ${path.basename(file)}`);
  assert.equal(Number(s[1]), bytes.length, "S= is the file size");
}

/** True when a delivered file's Received header carries this queue id. */
export function readsId(file: string, id: string): boolean {
  return fs.readFileSync(file, "latin1").slice(0, 400).includes(` id ${id}\n`);
}

/** CRLF → LF, as delivery stores content (a bare CR stays). */
export function lf(bytes: Buffer): Buffer {
  return Buffer.from(bytes.toString("latin1").replace(/\r\n/g, "\n"), "latin1");
}

/** The stored content of a delivered file (LF line ends) after the trace headers this server adds. */
export function deliveredContent(file: string): Buffer {
  const bytes = fs.readFileSync(file);
  const m = /^Return-Path: [^\r\n]*\nReceived: [^\r\n]*\n\t[^\r\n]*\n\t[^\r\n]*;\n\t[^\r\n]*\n/.exec(bytes.toString("latin1"));
  assert.ok(m, `trace headers of ${path.basename(file)}`);
  return bytes.subarray(m[0].length);
}

/** Files in a mailbox's tmp/ folder (should be empty after every transaction, delivered or not). */
export function tmpFiles(dataDir: string, address: string): string[] {
  const [local, domain] = address.toLowerCase().split("@");
  const d = path.join(dataDir, "mailboxes", domain!, local!, "tmp");
  return fs.existsSync(d) ? fs.readdirSync(d) : [];
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until cond() is true (log lines arrive through a pipe, a little after the reply). */
export async function eventually<T>(what: string, cond: () => T | undefined | null | false, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Reads replies until the server closes; returns them (for asserting nothing else was said). */
export async function drainUntilClosed(c: RawSmtp, timeoutMs = 5000): Promise<RawReply[]> {
  const out: RawReply[] = [];
  for (;;) {
    try {
      out.push(await c.reply(timeoutMs));
    } catch (err) {
      if (c.closed && c.pending === "") return out;
      throw err;
    }
  }
}

/** A whole ordinary session: greeting, EHLO, one message to `to` with DATA, QUIT. */
export async function deliverOne(port: number, to: string, subject: string): Promise<void> {
  const c = await greeted(port);
  await command(c, "MAIL FROM:<sender@remote.test>", 250, "2.1.0");
  await command(c, `RCPT TO:<${to}>`, 250, "2.1.5");
  await command(c, "DATA", 354, null);
  c.write(dataStream(Buffer.from(`Subject: ${subject}\r\n\r\nhello\r\n`)));
  await expectReply(c, 250, "2.0.0");
  await command(c, "QUIT", 221, "2.0.0");
  c.close();
}
