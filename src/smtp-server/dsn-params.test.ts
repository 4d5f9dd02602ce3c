// Unit tests for the DSN extension's MAIL/RCPT parameters (RFC 3461 §4) and xtext.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { isReply, parseMailArgs } from "./mail-args.js";
import { decodeXtext, encodeXtext, parseMailDsnParams, parseRcptDsnParams, MAX_ENVID, MAX_ORCPT } from "./dsn-params.js";
import type { Reply } from "../core/reply.js";

function params(line: string, prefix: "FROM:" | "TO:" = "FROM:"): ReadonlyMap<string, string | null> {
  const r = parseMailArgs(line, prefix);
  assert.ok(!isReply(r), line);
  return r.params;
}
const mail = (line: string) => parseMailDsnParams(params(line));
const rcpt = (line: string) => parseRcptDsnParams(params(line, "TO:"));
function assertReply(r: object, pattern: RegExp): void {
  assert.ok("code" in r, JSON.stringify(r));
  const rep = r as Reply;
  assert.equal(rep.code, 501);
  assert.equal(rep.enhanced, "5.5.4");
  assert.match(rep.lines.join(" "), pattern);
}

test("MAIL: RET and ENVID parsed, ENVID decoded from xtext", () => {
  assert.deepEqual(mail("FROM:<a@b.c> RET=FULL ENVID=QQ314159"), { ret: "FULL", envid: "QQ314159" });
  assert.deepEqual(mail("FROM:<a@b.c> ret=hdrs"), { ret: "HDRS" });
  assert.deepEqual(mail("FROM:<a@b.c> ENVID=a+2Bb+3Dc+20d"), { envid: "a+b=c d" });
  assert.deepEqual(mail("FROM:<a@b.c> SIZE=10"), {});
});

test("MAIL: bad RET and ENVID are 501 5.5.4 with a clear text", () => {
  assertReply(mail("FROM:<a@b.c> RET=BODY"), /RET=FULL or RET=HDRS/);
  assertReply(mail("FROM:<a@b.c> RET"), /RET=FULL or RET=HDRS/);
  assertReply(mail("FROM:<a@b.c> ENVID"), /needs a value/);
  assertReply(mail("FROM:<a@b.c> ENVID=ab+2"), /not xtext/);
  assertReply(mail("FROM:<a@b.c> ENVID=ab+ZZ"), /not xtext/);
  assertReply(mail("FROM:<a@b.c> ENVID=ab+0D+0Ax"), /printable US-ASCII/);
  assertReply(mail("FROM:<a@b.c> ENVID=é"), /not xtext/);
});

test("MAIL: ENVID of 100 characters passes, 101 is refused", () => {
  assert.deepEqual(mail(`FROM:<a@b.c> ENVID=${"x".repeat(MAX_ENVID)}`), { envid: "x".repeat(100) });
  assertReply(mail(`FROM:<a@b.c> ENVID=${"x".repeat(MAX_ENVID + 1)}`), /too long: at most 100/);
});

test("RCPT: NOTIFY forms", () => {
  assert.deepEqual(rcpt("TO:<a@b.c> NOTIFY=NEVER"), { notify: { kind: "never" } });
  assert.deepEqual(rcpt("TO:<a@b.c> NOTIFY=delay,Success"), { notify: { kind: "on", events: ["SUCCESS", "DELAY"] } });
  assert.deepEqual(rcpt("TO:<a@b.c> NOTIFY=FAILURE,FAILURE"), { notify: { kind: "on", events: ["FAILURE"] } });
  for (const bad of ["NOTIFY", "NOTIFY=NEVER,FAILURE", "NOTIFY=SOMETIMES", "NOTIFY=SUCCESS,,DELAY", "NOTIFY=FAILURE,"])
    assertReply(rcpt(`TO:<a@b.c> ${bad}`), /NOTIFY=NEVER or a list/);
});

test("RCPT: ORCPT decoded; type kept as given", () => {
  assert.deepEqual(rcpt("TO:<a@b.c> ORCPT=rfc822;Bob+2Bx@Example.ORG NOTIFY=FAILURE"), {
    notify: { kind: "on", events: ["FAILURE"] },
    orcpt: { addrType: "rfc822", address: "Bob+x@Example.ORG" },
  });
  assert.deepEqual(rcpt("TO:<a@b.c> ORCPT=RFC822;a@b"), { orcpt: { addrType: "RFC822", address: "a@b" } });
});

test("RCPT: bad ORCPT refused", () => {
  assertReply(rcpt("TO:<a@b.c> ORCPT"), /needs a value/);
  assertReply(rcpt("TO:<a@b.c> ORCPT=a@b"), /<addr-type>;<xtext>/);
  assertReply(rcpt("TO:<a@b.c> ORCPT=;a@b"), /<addr-type>;<xtext>/);
  assertReply(rcpt("TO:<a@b.c> ORCPT=rfc822;"), /not xtext/);
  assertReply(rcpt("TO:<a@b.c> ORCPT=rfc822;a+0Db@c"), /printable US-ASCII/);
  assertReply(rcpt("TO:<a@b.c> ORCPT=rfc822;a@b+4"), /not xtext/);
});

test("RCPT: ORCPT of 500 characters passes, 501 is refused", () => {
  const ok = `rfc822;${"a".repeat(MAX_ORCPT - 9)}@b`;
  assert.equal(ok.length, 500);
  assert.ok(!("code" in rcpt(`TO:<a@b.c> ORCPT=${ok}`)));
  assertReply(rcpt(`TO:<a@b.c> ORCPT=${ok}x`), /too long: at most 500/);
});

test("xtext: encode then decode gives back any octet string; encoded text is xtext", () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)) }), (s) => {
      const x = encodeXtext(s);
      assert.match(x, /^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/);
      assert.equal(decodeXtext(x), s);
    }),
  );
  assert.equal(encodeXtext("a+b=c d\r\n"), "a+2Bb+3Dc+20d+0D+0A");
  assert.equal(decodeXtext("+2b"), "+");
  assert.throws(() => encodeXtext("\u0100"), RangeError);
});
