import { test } from "node:test";
import assert from "node:assert/strict";
import { htmlToText, MAX_SCAN_BYTES, MAX_TOKENS, messageDigest, tokenize } from "./tokenizer.js";

const tokens = async (raw: string | Buffer): Promise<Set<string>> => new Set(await tokenize(Buffer.isBuffer(raw) ? raw : Buffer.from(raw)));
const has = (set: Set<string>, ...want: string[]): void => {
  for (const w of want) assert.ok(set.has(w), `missing ${w} in ${[...set].join(" ")}`);
};

test("headers give name-prefixed tokens: subject words (encoded words decoded), addresses, hosts, types", async () => {
  const t = await tokens(
    "Received: from mail.sender.example (mail.sender.example [192.0.2.55])\r\n\tby mx.example.test with ESMTP\r\n" +
      'From: =?utf-8?q?Caf=C3=A9_Owner?= <owner@cafe.example>\r\nTo: alice@example.test, bob@example.test\r\n' +
      "Subject: =?utf-8?b?w4l0w6kgU2FsZQ==?= FREE!!!\r\nMessage-ID: <abc@host.cafe.example>\r\nX-Mailer: BulkBlaster 3.1\r\n" +
      "Content-Type: text/plain; charset=UTF-8\r\n\r\nhello there\r\n",
  );
  has(t, "subject:été", "subject:sale", "subject:free", "subject:!!!", "from:addr:owner@cafe.example", "from:domain:cafe.example", "from:name:café", "from:name:owner");
  has(t, "to:domain:example.test", "recipients:2-5", "received:sender.example", "received:ip:192.0", "received:ip:192.0.2", "message-id:@cafe.example");
  has(t, "x-mailer:bulkblaster 3.1", "content-type:text/plain", "charset:utf-8", "header:received", "header:x-mailer", "hello", "there");
});

test("quoted-printable and base64 bodies are decoded in their charset before words are taken", async () => {
  const qp = await tokens("Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nunbelievable pr=E9=\r\ncieux offre\r\n");
  has(qp, "unbelievable", "précieux", "offre");
  const b64 = await tokens(`Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from("hidden words inside base64 größe").toString("base64")}\r\n`);
  has(b64, "hidden", "words", "inside", "base64", "größe");
  assert.ok(![...b64].some((w) => w.startsWith("skip:")), "the base64 text itself is not tokenized");
});

test("MIME multipart: every text part, attachment types and file extensions", async () => {
  const t = await tokens(
    'Subject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nfirst part words\r\n' +
      '--b1\r\nContent-Type: application/octet-stream; name="invoice.exe"\r\nContent-Disposition: attachment; filename="invoice.exe"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b1--\r\n',
  );
  has(t, "first", "part", "words", "content-type:multipart/mixed", "attachment:application/octet-stream", "filename:.exe");
});

test("HTML: scripts, styles and tags stripped, comments joined away, entities decoded, link hosts kept", async () => {
  const t = await tokens(
    'Subject: html\r\nContent-Type: text/html\r\n\r\n<html><head><style>.hidden { color: white }</style><script>var tracker = 1;</script></head>' +
      '<body><p>Buy V<!-- x -->iagra &amp; more&nbsp;now</p><a href="https://Shop.Pills.Example:8080/x?y">here</a><img src="http://198.51.100.7/p.gif"></body></html>\r\n',
  );
  has(t, "viagra", "more", "now", "html:only", "html:script", "html:img", "proto:https", "url:shop.pills.example", "url:pills.example", "url:ip-address");
  assert.ok(!t.has("tracker") && !t.has("hidden") && !t.has("color"), "script and style content is not text");
  assert.equal(htmlToText("a<b>b</b>&#233;&#x263A;&lt;"), "a b é☺<");
});

test("X-Spam-* headers (our verdicts, or a forger's) and the mbox From line are never tokens", async () => {
  const t = await tokens("From spammer@x.example Thu Aug 22 13:17:22 2002\r\nX-Spam-Status: No, score=0.0001\r\nX-Spam-Score: 0\r\nSubject: hello\r\n\r\nbody\r\n");
  assert.ok(![...t].some((w) => w.includes("x-spam") || w.includes("spammer")), [...t].join(" "));
  has(t, "subject:hello", "body");
});

test("long words become skip tokens, e-mail addresses in text their domain", async () => {
  const t = await tokens("Subject: x\r\n\r\nsupercalifragilisticexpialidocious write to sales@offers.example\r\n");
  has(t, "skip:s30", "email:offers.example", "write");
});

test("bounded: only the first MAX_SCAN_BYTES are read and at most MAX_TOKENS kept", async () => {
  const filler = "x".repeat(MAX_SCAN_BYTES);
  const late = await tokens(`Subject: x\r\n\r\n${filler}\r\nlateword\r\n`);
  assert.ok(!late.has("lateword"));
  const words = Array.from({ length: MAX_TOKENS * 2 }, (_, i) => `w${i.toString(36).padStart(4, "0")}`).join(" ");
  const many = await tokenize(Buffer.from(`Subject: x\r\n\r\n${words}\r\n`));
  assert.equal(many.length, MAX_TOKENS);
});

test("garbage and broken MIME never throw", async () => {
  for (const raw of [Buffer.alloc(0), Buffer.from([0xff, 0xfe, 0x00, 0x0a]), Buffer.from("Content-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n--zz\r\nno end"), Buffer.from("no headers at all\r\njust text here")]) {
    assert.ok(Array.isArray(await tokenize(raw)));
  }
});

test("messageDigest ignores the mbox From line and is stable", () => {
  const m = "Subject: same\r\n\r\nbody\r\n";
  assert.equal(messageDigest(Buffer.from(`From a@b Thu Aug 22 13:17:22 2002\n${m}`)), messageDigest(Buffer.from(m)));
  assert.notEqual(messageDigest(Buffer.from(m)), messageDigest(Buffer.from(m + "x")));
  // The SMTP copy (CRLF) and the Maildir copy (LF) are the same message.
  assert.equal(messageDigest(Buffer.from(m)), messageDigest(Buffer.from(m.replace(/\r\n/g, "\n"))));
});

test("hostile input takes linear time: no regular expression backtracks over the whole message", async () => {
  const n = 200_000;
  const bodies: Record<string, string> = {
    "unclosed tags": "<".repeat(n),
    "unclosed comments": "<!--".repeat(n / 4),
    "unclosed scripts": "<script>".repeat(n / 8),
    "attribute spaces": `<a href=${" ".repeat(n)}x`,
    "word with punctuation inside": `a${"!".repeat(n)}b`,
  };
  const headers: Record<string, string> = {
    "received hyphens": `Received: from ${"a-".repeat(n / 4)}\r\n`,
    "address-like run": `To: ${"a".repeat(n / 2)}\r\n`,
    "message-id ats": `Message-ID: ${"@".repeat(n / 2)} x\r\n`,
  };
  const cases = [
    ...Object.entries(bodies).map(([name, body]) => [name, `Subject: x\r\nContent-Type: text/html\r\n\r\n${body}\r\n`] as const),
    ...Object.entries(headers).map(([name, header]) => [name, `${header}Subject: x\r\n\r\nbody\r\n`] as const),
  ];
  for (const [name, raw] of cases) {
    const started = performance.now();
    await tokenize(Buffer.from(raw));
    const ms = performance.now() - started;
    assert.ok(ms < 1500, `${name}: ${ms.toFixed(0)} ms`);
  }
});

test("what a receiving server wrote about the client's reverse DNS becomes a token (Sendmail, Postfix and Petrel forms)", async () => {
  const t = await tokenize(
    Buffer.from(
      "Received: from helo.example (host.example [192.0.2.1] (may be forged))\r\n\tby mx.example; Mon, 30 Nov 2026 10:00:00 +0000\r\n" +
        "Received: from other (unknown[198.51.100.7])\r\n\tby relay.example; Mon, 30 Nov 2026 09:59:00 +0000\r\nSubject: x\r\n\r\nbody\r\n",
    ),
  );
  assert.ok(t.includes("received:rdns-forged") && t.includes("received:rdns-none"), t.join(" "));
  const clean = await tokenize(Buffer.from("Received: from mail.example (mail.example [192.0.2.1])\r\n\tby mx.example; x\r\nSubject: x\r\n\r\nbody\r\n"));
  assert.ok(!clean.some((x) => x.startsWith("received:rdns-")), clean.join(" "));
});
