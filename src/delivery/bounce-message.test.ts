// Unit tests for DSN bounces (RFC 3464, RFC 6522): the output is parsed by Python's `email` package,
// a parser we did not write, and every field is checked; plus streaming, 8-bit and injection cases.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { Readable } from "node:stream";
import fc from "fast-check";
import { field } from "../core/header-field.js";
import { bounceMessage, CrlfLines, MAX_DIAGNOSTIC, shouldBounce, type BounceInput, type BounceRecipient } from "./bounce-message.js";
import { rfc5322Date } from "../spool/trace-headers.js";

const ARRIVAL = new Date("2026-11-30T10:00:00Z");
const NOW = new Date("2026-11-30T12:00:00Z");
const LAST = new Date("2026-11-30T11:59:00Z");
const UNTIL = new Date("2026-12-05T10:00:00Z");
const ORIGINAL = "Return-Path: <alice@example.com>\nReceived: from client\n\tby mail.example.com\nFrom: Alice <alice@example.com>\nTo: bob@remote.example\nSubject: Lunch\n\nSee you at noon.\n.\nBye\n";

const FAILED: BounceRecipient = {
  finalRecipient: "bob@remote.example",
  originalRecipient: "rfc822;Bob@remote.example",
  action: "failed",
  status: "5.1.1",
  remoteMta: "mx.remote.example",
  diagnostic: "550 5.1.1 <bob@remote.example>: Recipient address rejected: User unknown",
  lastAttempt: LAST,
};

function input(over: Partial<BounceInput> = {}): BounceInput {
  return {
    reportingMta: "mail.example.com",
    queueId: "Q1234",
    arrivalDate: ARRIVAL,
    envid: "ENV-42",
    sender: "alice@example.com",
    recipients: [FAILED],
    ret: "HDRS",
    original: () => Readable.from([Buffer.from(ORIGINAL)]),
    postmaster: "MAILER-DAEMON@mail.example.com",
    now: NOW,
    messageId: "bounce.Q1234@mail.example.com",
    ...over,
  };
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of it) parts.push(b);
  return Buffer.concat(parts);
}

interface Parsed {
  readonly defects: string[];
  readonly headers: Record<string, string>;
  readonly contentType: string;
  readonly reportType: string;
  readonly parts: { type: string; cte: string | null; description: string | null; charset: string | null }[];
  readonly text: string;
  readonly status: Record<string, string>[] | null;
  readonly third: { headers?: [string, string][]; body?: string; raw?: string };
}

/** Python's email package reads the bounce; we get back what it saw. */
function parse(bytes: Buffer): Parsed {
  const script = String.raw`
import email, json, sys, re
from email import policy
raw = sys.stdin.buffer.read()
m = email.message_from_bytes(raw, policy=policy.compat32)
# compat32 keeps 8-bit header octets as surrogates: give them back as UTF-8.
unfold = lambda v: re.sub(r'\r?\n', '', str(v)).encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')
parts = m.get_payload()
defects = [type(d).__name__ for d in m.defects] + [type(d).__name__ for p in parts for d in p.defects]
out = {"defects": defects, "headers": {k: unfold(v) for k, v in m.items()},
  "contentType": m.get_content_type(), "reportType": m.get_param("report-type"),
  "parts": [{"type": p.get_content_type(), "cte": p.get("Content-Transfer-Encoding"), "description": p.get("Content-Description"),
    "charset": p.get_param("charset")} for p in parts]}
out["text"] = parts[0].get_payload(decode=True).decode("utf-8")
st = parts[1]
out["status"] = [{k: unfold(v) for k, v in b.items()} for b in st.get_payload()] if st.get_content_type() == "message/delivery-status" else None
third = parts[2]
if third.is_multipart():  # message/*: Python parses the attached message (or headers) as a message
  inner = third.get_payload()[0]
  out["third"] = {"headers": [[k, unfold(v)] for k, v in inner.raw_items()], "body": inner.get_payload()}
else:
  out["third"] = {"raw": third.get_payload(decode=True).decode("utf-8", "replace")}
print(json.dumps(out))
`;
  return JSON.parse(execFileSync("python3", ["-c", script], { input: bytes }).toString()) as Parsed;
}

/** Every line ends in CRLF, none is longer than 998 octets (RFC 5322 §2.1.1). */
function assertWellFormed(bytes: Buffer): void {
  const text = bytes.toString("latin1");
  assert.ok(text.endsWith("\r\n"));
  assert.doesNotMatch(text, /[^\r]\n|\r[^\n]/);
  for (const line of text.split("\r\n")) assert.ok(line.length <= 998, `line of ${line.length}`);
}

test("a failure DSN (RET=HDRS): Python's email package reads every field", async () => {
  const bytes = await collect(bounceMessage(input()));
  assertWellFormed(bytes);
  const p = parse(bytes);
  assert.deepEqual(p.defects, []);
  assert.deepEqual(p.headers, {
    From: "Mail Delivery System <MAILER-DAEMON@mail.example.com>",
    To: "<alice@example.com>",
    Subject: "Undelivered Mail Returned to Sender",
    Date: rfc5322Date(NOW),
    "Message-ID": "<bounce.Q1234@mail.example.com>",
    "Auto-Submitted": "auto-replied",
    "MIME-Version": "1.0",
    "Content-Type": p.headers["Content-Type"]!,
    "Content-Transfer-Encoding": "7bit",
  });
  assert.match(p.headers["Content-Type"]!, /^multipart\/report; report-type=delivery-status; boundary="[^"]+"$/);
  assert.equal(p.contentType, "multipart/report");
  assert.equal(p.reportType, "delivery-status");
  assert.deepEqual(p.parts, [
    { type: "text/plain", cte: "7bit", description: "Notification", charset: "us-ascii" },
    { type: "message/delivery-status", cte: "7bit", description: "Delivery report", charset: null },
    { type: "text/rfc822-headers", cte: "7bit", description: "Undelivered Message Headers", charset: null },
  ]);
  assert.deepEqual(p.status, [
    { "Original-Envelope-Id": "ENV-42", "Reporting-MTA": "dns; mail.example.com", "X-Petrel-Queue-ID": "Q1234", "Arrival-Date": rfc5322Date(ARRIVAL) },
    {
      "Original-Recipient": "rfc822;Bob@remote.example",
      "Final-Recipient": "rfc822; bob@remote.example",
      Action: "failed",
      Status: "5.1.1",
      "Remote-MTA": "dns; mx.remote.example",
      "Diagnostic-Code": "smtp; 550 5.1.1 <bob@remote.example>: Recipient address rejected: User unknown",
      "Last-Attempt-Date": rfc5322Date(LAST),
    },
  ]);
  const flat = p.text.replace(/\s+/g, " ");
  assert.match(flat, /This is the mail system at mail\.example\.com\./);
  assert.match(flat, /Your message to <bob@remote\.example> could not be delivered: the mailbox does not exist \(5\.1\.1\)\./);
  assert.match(flat, /The mail server mx\.remote\.example said: 550 5\.1\.1 <bob@remote\.example>: Recipient address rejected: User unknown/);
  assert.match(flat, /What you can do: check the address for typing mistakes/);
  assert.match(flat, /the headers of your message are attached/);
  // The original's header section, CRLF, without its body or the empty line.
  assert.equal(p.third.raw, ORIGINAL.slice(0, ORIGINAL.indexOf("\n\n") + 1).replace(/\n/g, "\r\n"));
});

test("RET=FULL attaches the whole original as message/rfc822", async () => {
  const bytes = await collect(bounceMessage(input({ ret: "FULL" })));
  assertWellFormed(bytes);
  const p = parse(bytes);
  assert.deepEqual(p.defects, []);
  assert.deepEqual(p.parts[2], { type: "message/rfc822", cte: "7bit", description: "Undelivered Message", charset: null });
  assert.deepEqual(p.third.headers!.map(([k]) => k), ["Return-Path", "Received", "From", "To", "Subject"]);
  assert.deepEqual(p.third.headers![4], ["Subject", "Lunch"]);
  assert.equal(p.third.body, "See you at noon.\r\n.\r\nBye\r\n");
  assert.match(p.text.replace(/\s+/g, " "), /your message is attached/);
});

test("HDRS reads only the header section of a huge original and never its body", async () => {
  let bodyChunksRead = 0;
  const original = () =>
    Readable.from(
      (function* () {
        yield Buffer.from("From: a@b.example\r\nSubject: big\r\n\r\n");
        for (let i = 0; i < 100_000; i++) {
          bodyChunksRead++;
          yield Buffer.alloc(64 * 1024, 0x61);
        }
      })(),
    );
  const bytes = await collect(bounceMessage(input({ original })));
  // Readable.from reads a little ahead: a few chunks at most, of 100,000.
  assert.ok(bodyChunksRead < 40, `read ${bodyChunksRead} body chunks`);
  assert.equal(parse(bytes).third.raw, "From: a@b.example\r\nSubject: big\r\n");
});

test("RET=FULL streams a 256 MB original with flat memory", async () => {
  const LINE = Buffer.from("x".repeat(1023) + "\n");
  const CHUNK = Buffer.concat(Array.from({ length: 64 }, () => LINE)); // 64 KB of LF lines
  const CHUNKS = 4096;
  const original = () =>
    Readable.from(
      (function* () {
        yield Buffer.from("Subject: big\n\n");
        for (let i = 0; i < CHUNKS; i++) yield CHUNK;
      })(),
    );
  global.gc?.();
  const before = process.memoryUsage();
  let total = 0;
  let peak = 0;
  let tail = "";
  let n = 0;
  for await (const b of bounceMessage(input({ ret: "FULL", original }))) {
    total += b.length;
    if (++n % 256 === 0) peak = Math.max(peak, process.memoryUsage().rss - before.rss);
    tail = (tail + b.toString("latin1")).slice(-64);
  }
  // Every LF became CRLF: 65 lines of 1025 octets per chunk, plus the headers and parts.
  assert.ok(total > CHUNKS * 64 * 1025, `${total}`);
  assert.match(tail, /x\r\n\r\n--[^\r]+--\r\n$/);
  assert.ok(peak < 64 * 1024 * 1024, `rss grew by ${Math.round(peak / 1048576)} MB while streaming 256 MB`);
});

test("CR/LF in a remote reply cannot add a header field, a status field or a MIME part", async () => {
  const evil: BounceRecipient = {
    ...FAILED,
    remoteMta: "mx.remote.example\r\nX-Evil: 1",
    diagnostic: "550 5.1.1 no\r\nBcc: victim@example.org\r\n\r\n--BOUND\r\nContent-Type: text/html\r\n\r\n<b>hi</b>\nInjected: yes\r\x00\x1b[2J",
  };
  const bytes = await collect(bounceMessage(input({ recipients: [evil], boundary: "BOUND", envid: "E\r\nX-Env: 1" })));
  assertWellFormed(bytes);
  const p = parse(bytes);
  assert.deepEqual(p.defects, []);
  assert.equal(p.parts.length, 3);
  assert.equal(p.status!.length, 2);
  assert.deepEqual(Object.keys(p.status![1]!), ["Original-Recipient", "Final-Recipient", "Action", "Status", "Remote-MTA", "Diagnostic-Code", "Last-Attempt-Date"]);
  assert.equal(p.status![1]!["Remote-MTA"], "dns; mx.remote.example X-Evil: 1");
  assert.equal(p.status![1]!["Diagnostic-Code"], "smtp; 550 5.1.1 no Bcc: victim@example.org --BOUND Content-Type: text/html <b>hi</b> Injected: yes ??[2J");
  assert.equal(p.status![0]!["Original-Envelope-Id"], "E X-Env: 1");
  assert.equal(Object.keys(p.headers).filter((k) => /bcc|evil|injected/i.test(k)).length, 0);
  // In the text part each reply line is indented: none starts a boundary or a header.
  assert.match(p.text, /\r\n {4}--BOUND\r\n {4}Content-Type: text\/html\r\n/);
  assert.doesNotMatch(bytes.toString("latin1"), /\r\n(Bcc|Injected|X-Evil):/);
});

test("a long remote reply is folded, cut at MAX_DIAGNOSTIC, and unfolds to the same text", async () => {
  const word = "w".repeat(1500);
  const diagnostic = `550 ${"too many words ".repeat(50)}${word}`;
  const bytes = await collect(bounceMessage(input({ recipients: [{ ...FAILED, diagnostic }] })));
  assertWellFormed(bytes);
  const code = parse(bytes).status![1]!["Diagnostic-Code"]!;
  // Cut at MAX_DIAGNOSTIC (754 + 1246 characters) with "...", then the 1249-octet word split with a
  // space so no line passes 998 octets.
  assert.equal(MAX_DIAGNOSTIC, 2000);
  assert.equal(code, `smtp; 550 ${"too many words ".repeat(50)}${"w".repeat(900)} ${"w".repeat(346)}...`);
});

test("a delayed DSN says nothing needs doing and until when we retry", async () => {
  const delayed: BounceRecipient = {
    finalRecipient: "carol@slow.example",
    action: "delayed",
    status: "4.4.1",
    remoteMta: "mx.slow.example",
    diagnostic: "451 4.4.1 try again later",
    lastAttempt: LAST,
    willRetryUntil: UNTIL,
  };
  const p = parse(await collect(bounceMessage(input({ recipients: [delayed], envid: undefined }))));
  assert.equal(p.headers.Subject, "Delayed Mail (still being retried)");
  assert.equal(p.parts[2]!.description, "Delayed Message Headers");
  assert.deepEqual(p.status, [
    { "Reporting-MTA": "dns; mail.example.com", "X-Petrel-Queue-ID": "Q1234", "Arrival-Date": rfc5322Date(ARRIVAL) },
    {
      "Final-Recipient": "rfc822; carol@slow.example",
      Action: "delayed",
      Status: "4.4.1",
      "Remote-MTA": "dns; mx.slow.example",
      "Diagnostic-Code": "smtp; 451 4.4.1 try again later",
      "Last-Attempt-Date": rfc5322Date(LAST),
      "Will-Retry-Until": rfc5322Date(UNTIL),
    },
  ]);
  const flat = p.text.replace(/\s+/g, " ");
  assert.match(flat, /This is only a warning: you need not do anything, and we keep trying\./);
  assert.ok(flat.includes(`We keep trying until ${rfc5322Date(UNTIL)}; you will hear from us again`), flat);
  assert.match(flat, /The mail server mx\.slow\.example said: 451 4\.4\.1 try again later/);
  assert.doesNotMatch(flat, /could not be delivered/);
});

test("a mixed report is a failure report with one block per recipient; a success report has its own subject", async () => {
  const delayed: BounceRecipient = { finalRecipient: "c@d.example", action: "delayed", status: "4.4.1" };
  const p = parse(await collect(bounceMessage(input({ recipients: [FAILED, delayed] }))));
  assert.equal(p.headers.Subject, "Undelivered Mail Returned to Sender");
  assert.deepEqual(p.status!.map((b) => b.Action), [undefined, "failed", "delayed"]);
  assert.doesNotMatch(p.text, /sent to <Bob@remote\.example>/); // the same address in another case
  const alias = parse(await collect(bounceMessage(input({ recipients: [{ ...FAILED, originalRecipient: "rfc822;team@example.com" }] }))));
  assert.match(alias.text.replace(/\s+/g, " "), /Your message to <bob@remote\.example> \(sent to <team@example\.com>\) could not be delivered/);
  const ok = parse(await collect(bounceMessage(input({ recipients: [{ finalRecipient: "c@d.example", action: "relayed", status: "2.0.0" }] }))));
  assert.equal(ok.headers.Subject, "Successful Mail Delivery Report");
  assert.match(ok.text.replace(/\s+/g, " "), /passed on to a mail server that sends no delivery notifications/);
});

test("8-bit originals: Latin-1 headers declared 8bit; UTF-8 headers as message/global-headers; an 8-bit body with FULL", async () => {
  const run = async (orig: Buffer, ret: "HDRS" | "FULL") => {
    const bytes = await collect(bounceMessage(input({ ret, original: () => Readable.from([orig]) })));
    return { p: parse(bytes), top: bytes.toString("latin1").split("\r\n\r\n")[0]! };
  };
  const latin1 = await run(Buffer.from("Subject: caf\xe9\n\nbody\n", "latin1"), "HDRS");
  assert.deepEqual([latin1.p.parts[2]!.type, latin1.p.parts[2]!.cte], ["text/rfc822-headers", "8bit"]);
  assert.match(latin1.top, /Content-Transfer-Encoding: 8bit/);
  const utf8 = await run(Buffer.from("Subject: café\nFrom: jürgen@example.de\n\nbody\n"), "HDRS");
  assert.deepEqual([utf8.p.parts[2]!.type, utf8.p.parts[2]!.cte], ["message/global-headers", "8bit"]);
  assert.deepEqual(utf8.p.third.headers, [["Subject", "café"], ["From", "jürgen@example.de"]]);
  const utf8Full = await run(Buffer.from("Subject: café\n\nbody\n"), "FULL");
  assert.equal(utf8Full.p.parts[2]!.type, "message/global");
  const body8 = await run(Buffer.from("Subject: plain\n\nna\xefve\n", "latin1"), "FULL");
  assert.deepEqual([body8.p.parts[2]!.type, body8.p.parts[2]!.cte], ["message/rfc822", "8bit"]);
  // An 8-bit body does not matter when only the headers are returned.
  const body8Hdrs = await run(Buffer.from("Subject: plain\n\nna\xefve\n", "latin1"), "HDRS");
  assert.deepEqual([body8Hdrs.p.parts[2]!.cte], ["7bit"]);
  assert.match(body8Hdrs.top, /Content-Transfer-Encoding: 7bit/);
});

test("a non-ASCII recipient makes a message/global-delivery-status with the utf-8 address type (RFC 6533)", async () => {
  const bytes = await collect(bounceMessage(input({ recipients: [{ ...FAILED, finalRecipient: "jürgen@bücher.example" }] })));
  const p = parse(bytes);
  assert.deepEqual([p.parts[1]!.type, p.parts[1]!.cte], ["message/global-delivery-status", "8bit"]);
  assert.equal(p.parts[0]!.charset, "utf-8");
  assert.match(bytes.toString("utf8"), /\r\nFinal-Recipient: utf-8; jürgen@bücher\.example\r\n/);
});

test("never a bounce for a bounce: the null sender gets none", () => {
  assert.equal(shouldBounce(""), false);
  assert.equal(shouldBounce("alice@example.com"), true);
});

test("bad arguments are programming errors", async () => {
  await assert.rejects(collect(bounceMessage(input({ recipients: [] }))), RangeError);
  await assert.rejects(collect(bounceMessage(input({ recipients: [{ ...FAILED, status: "550" }] }))), RangeError);
  await assert.rejects(collect(bounceMessage(input({ boundary: "bad\r\nboundary" }))), RangeError);
  await assert.rejects(collect(bounceMessage(input({ sender: "" }))), /null sender/);
});

test("a read error in the original ends the bounce with that error, after the stream is released", async () => {
  let destroyed = 0;
  const original = () => {
    const r = new Readable({ read() { this.push(Buffer.from("Subject: x\n")); this.destroy(new Error("EIO: read failed")); } });
    r.on("close", () => destroyed++);
    return r;
  };
  await assert.rejects(collect(bounceMessage(input({ original }))), /EIO/);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(destroyed, 1);
});

test("a default boundary and Message-ID are random and valid", async () => {
  const a = parse(await collect(bounceMessage(input({ messageId: undefined }))));
  const b = parse(await collect(bounceMessage(input({ messageId: undefined }))));
  assert.notEqual(a.headers["Content-Type"], b.headers["Content-Type"]);
  assert.match(a.headers["Message-ID"]!, /^<[0-9a-f]{24}@mail\.example\.com>$/);
});

test("CrlfLines: any chunking gives the same CRLF text; HDRS stops at the empty line", () => {
  const reference = (s: string, headersOnly: boolean) => {
    let t = s.replace(/\r?\n/g, "\r\n");
    if (headersOnly) {
      const m = /(^|\r\n)\r\n/.exec(t);
      if (m) t = t.slice(0, m.index + m[1]!.length);
    }
    return t;
  };
  fc.assert(
    fc.property(
      fc.string({ unit: fc.constantFrom("a", "b", ":", " ", "\r", "\n", "\r\n", "é") }),
      fc.array(fc.nat(), { maxLength: 8 }),
      fc.boolean(),
      (text, cuts, headersOnly) => {
        const buf = Buffer.from(text);
        const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((x, y) => x - y);
        const conv = new CrlfLines(headersOnly);
        const out: Buffer[] = [];
        let last = 0;
        for (const p of [...points, buf.length]) {
          if (!conv.done) out.push(...conv.feed(buf.subarray(last, p)));
          last = p;
        }
        out.push(...conv.end());
        assert.equal(Buffer.concat(out).toString(), reference(text, headersOnly));
        assert.equal(conv.eightBitHeaders, /é/.test(reference(text, true)));
      },
    ),
    { numRuns: 500 },
  );
});

test("field folds before spaces at 78 columns and unfolding gives the value back", () => {
  const value = Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ");
  const f = field("Diagnostic-Code", value);
  for (const line of f.split("\r\n").slice(0, -1)) assert.ok(line.length <= 78, line);
  assert.equal(f.replace(/\r\n/g, ""), `Diagnostic-Code: ${value}`);
  assert.equal(field("X", "a\r\nb\nc\rd\x00"), "X: a b c d?\r\n");
});
