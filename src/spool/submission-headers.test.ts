// Unit tests of the Date / Message-ID completion for submitted messages (RFC 6409 §8.2, §8.3): where
// the headers go, which lines count as fields, bounded hold-back, and fast-check properties (any split
// gives the same bytes; a second pass adds nothing; only the missing fields are added).
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { MAX_CLASSIFY, SubmissionHeaders } from "./submission-headers.js";
import { rfc5322Date } from "./trace-headers.js";

const NOW = new Date(Date.UTC(2026, 10, 30, 10, 45, 5));
const DATE = `Date: ${rfc5322Date(NOW)}\r\n`;
const MID = "Message-ID: <20261130.abc@mail.example.test>\r\n";
const BOTH = DATE + MID;

function make(): SubmissionHeaders {
  return new SubmissionHeaders({ hostname: "mail.example.test", now: () => NOW, messageId: () => "20261130.abc" });
}

/** Feeds the content in the given pieces (one feed call per group) and returns everything written. */
function run(groups: string[][] | string[], sh = make()): string {
  const out: Buffer[] = [];
  for (const g of groups) out.push(...sh.feed((Array.isArray(g) ? g : [g]).map((s) => Buffer.from(s, "latin1"))));
  out.push(...sh.end());
  return Buffer.concat(out).toString("latin1");
}

const whole = (s: string) => run([s]);
const bytewise = (s: string) => run([...s].map((c) => [c]));

test("the date has RFC 5322 §3.3's form with a numeric zone", () => {
  assert.match(DATE, /^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n$/);
});

test("a message with both fields passes unchanged, and the body passes as the same pieces", () => {
  const msg = "From: a@x.test\r\nDate: Mon, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n";
  assert.equal(whole(msg), msg);
  assert.equal(bytewise(msg), msg);
  const sh = make();
  sh.feed([Buffer.from("Subject: s\r\n\r\n")]);
  const body = [Buffer.from("line one\r\n"), Buffer.from("Date: not a header\r\n")];
  assert.equal(sh.feed(body), body, "after the header section feed returns its argument");
});

test("missing fields are inserted just before the empty line", () => {
  assert.equal(whole("Subject: s\r\n\r\nbody\r\n"), `Subject: s\r\n${BOTH}\r\nbody\r\n`);
  assert.equal(whole("Subject: s\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n"), `Subject: s\r\nMessage-ID: <1@x>\r\n${DATE}\r\nbody\r\n`);
  assert.equal(whole("Date: d\r\nSubject: s\r\n\r\nbody\r\n"), `Date: d\r\nSubject: s\r\n${MID}\r\nbody\r\n`);
});

test("field names in any case, and the obsolete white space before the colon", () => {
  assert.equal(whole("date: d\r\nmessage-id: <1@x>\r\n\r\nb\r\n"), "date: d\r\nmessage-id: <1@x>\r\n\r\nb\r\n");
  assert.equal(whole("DATE: d\r\nMESSAGE-ID: <1@x>\r\n\r\n"), "DATE: d\r\nMESSAGE-ID: <1@x>\r\n\r\n");
  assert.equal(whole("Date \t: d\r\nMessage-Id : <1@x>\r\n\r\n"), "Date \t: d\r\nMessage-Id : <1@x>\r\n\r\n");
});

test("look-alikes are not the fields: folded lines, longer names, fields in the body", () => {
  assert.equal(whole("X-Note: a\r\n Date: b\r\n\tMessage-ID: <1@x>\r\n\r\n"), `X-Note: a\r\n Date: b\r\n\tMessage-ID: <1@x>\r\n${BOTH}\r\n`);
  assert.equal(whole("Dates: a\r\nX-Date: b\r\nMessage-IDs: c\r\nResent-Date: d\r\n\r\n"), `Dates: a\r\nX-Date: b\r\nMessage-IDs: c\r\nResent-Date: d\r\n${BOTH}\r\n`);
  assert.equal(whole("Subject: s\r\n\r\nDate: d\r\nMessage-ID: <1@x>\r\n"), `Subject: s\r\n${BOTH}\r\nDate: d\r\nMessage-ID: <1@x>\r\n`);
});

test("no empty line: the fields go at the end, after a line end if the last line had none", () => {
  assert.equal(whole("Subject: s\r\n"), `Subject: s\r\n${BOTH}`);
  assert.equal(whole("Subject: s"), `Subject: s\r\n${BOTH}`);
  assert.equal(bytewise("Subject: s"), `Subject: s\r\n${BOTH}`);
  assert.equal(whole(""), BOTH);
  assert.equal(run([]), BOTH);
});

test("no header at all: the fields go first; a first line that is no field becomes body after an empty line", () => {
  assert.equal(whole("\r\nbody\r\n"), `${BOTH}\r\nbody\r\n`);
  assert.equal(whole("Hello world\r\n"), `${BOTH}\r\nHello world\r\n`);
  assert.equal(whole("Subject: s\r\n>From me\r\n\r\nx\r\n"), `Subject: s\r\n${BOTH}\r\n>From me\r\n\r\nx\r\n`);
  assert.equal(whole("Subject: s\r\n\x00junk\r\n"), `Subject: s\r\n${BOTH}\r\n\x00junk\r\n`);
  assert.equal(whole("Subject: s\r\nDat"), `Subject: s\r\n${BOTH}\r\nDat`);
  assert.equal(whole(": no name\r\n"), `${BOTH}\r\n: no name\r\n`);
});

test("LF-only and bare-CR input does not crash: a lone LF ends the header section too", () => {
  assert.equal(whole("Subject: s\nDate: d\n\nbody\n"), `Subject: s\nDate: d\n${MID}\nbody\n`);
  assert.equal(whole("Subject: s\r\r\n\r\n"), `Subject: s\r\r\n${BOTH}\r\n`);
  assert.equal(whole("Subject: s\r\n\rx\r\n"), `Subject: s\r\n${BOTH}\r\n\rx\r\n`);
});

test("a huge header line streams through; an undecided line holds back at most MAX_CLASSIFY bytes", () => {
  const subject = `Subject: ${"x".repeat(200_000)}\r\n`;
  assert.equal(whole(`${subject}\r\nb`), `${subject}${BOTH}\r\nb`);
  // A name with no colon: one byte at a time, everything but the last MAX_CLASSIFY bytes is written at once.
  const sh = make();
  let written = 0;
  const name = "N".repeat(10_000);
  for (let i = 0; i < name.length; i++) {
    written += sh.feed([Buffer.from(name[i]!)]).reduce((n, b) => n + b.length, 0);
    assert.ok(i + 1 - written <= MAX_CLASSIFY, `held ${i + 1 - written} bytes`);
  }
  const rest = Buffer.concat([...sh.feed([Buffer.from(": v\r\n\r\n")]), ...sh.end()]).toString("latin1");
  assert.equal(written + rest.length, name.length + ": v\r\n".length + BOTH.length + 2);
  assert.ok(rest.endsWith(`: v\r\n${BOTH}\r\n`));
});

const content = fc
  .array(
    fc.oneof(
      fc.constantFrom("Date: d", "date:x", "Message-ID: <1@x>", "MESSAGE-ID :y", "Subject: s", " folded", "\tDate: f", "", "Hello world", "Dat", ":", "\r", "X-Long: " + "y".repeat(300), "N".repeat(200)),
      fc.string({ maxLength: 12 }),
    ),
    { maxLength: 8 },
  )
  .chain((lines) => fc.constantFrom(lines.join("\r\n"), lines.join("\r\n") + "\r\n", lines.join("\n")));

/** Splits s at the given cut points (fast-check chooses them). */
function split(s: string, cuts: number[]): string[][] {
  const at = [...new Set(cuts.map((c) => c % (s.length + 1)))].sort((a, b) => a - b);
  const pieces: string[] = [];
  let prev = 0;
  for (const c of [...at, s.length]) {
    pieces.push(s.slice(prev, c));
    prev = c;
  }
  // Group neighbouring pieces into feed calls of one or two pieces.
  const groups: string[][] = [];
  for (let i = 0; i < pieces.length; i += 2) groups.push(pieces.slice(i, i + 2));
  return groups;
}

test("properties: any split gives the same bytes; a second pass adds nothing; only the missing fields are added", () => {
  fc.assert(
    fc.property(content, fc.array(fc.nat(), { maxLength: 12 }), (msg, cuts) => {
      const out = whole(msg);
      assert.equal(run(split(msg, cuts)), out);
      assert.equal(whole(out), out, "the inserted fields are in the header section");
      // Taking the inserted block (and the empty line after it, if one was added) out gives the input back.
      const block = out.includes(BOTH) ? BOTH : out.includes(DATE) ? DATE : out.includes(MID) ? MID : "";
      if (block === "") return assert.equal(out, msg);
      const at = out.indexOf(block);
      const rest = out.slice(0, at) + out.slice(at + block.length);
      assert.ok(rest === msg || rest.replace(/\r\n$/, "") === msg || rest.slice(0, at) + rest.slice(at + 2) === msg, JSON.stringify({ msg, out }));
    }),
    { numRuns: 1500 },
  );
});

test("sendmail's options: a missing From is added first, with the input's LF line ends; a present From is kept", () => {
  const sh = () => new SubmissionHeaders({ hostname: "mail.example.test", now: () => NOW, messageId: () => "20261130.abc", from: "Jo <jo@mail.example.test>", lineEnd: "\n" });
  const added = `From: Jo <jo@mail.example.test>\nDate: ${rfc5322Date(NOW)}\nMessage-ID: <20261130.abc@mail.example.test>\n`;
  assert.equal(run(["Subject: s\n\nbody\n"], sh()), `Subject: s\n${added}\nbody\n`);
  assert.equal(run(["Subject: s\nbody\n"], sh()), `Subject: s\n${added}\nbody\n`);
  assert.equal(run(["Subject: s"], sh()), `Subject: s\n${added}`);
  const withFrom = "from: me@x.test\nDate: Mon, 1 Jan 2026 00:00:00 +0000\nMessage-ID: <1@x>\n\nbody\n";
  assert.equal(run([withFrom], sh()), withFrom);
});
