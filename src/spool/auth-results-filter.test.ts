// Unit tests of the removal of Authentication-Results fields claiming this host (RFC 8601 §5): exact and
// case-insensitive ids, folded fields, comments and quoted ids, other hosts' fields kept, the body never
// touched, any split of the input giving the same bytes (fast-check), and bounded hold-back.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { AuthResultsFilter, MAX_HELD } from "./auth-results-filter.js";

const HOST = "mx.petrel.test";

function run(pieces: string[], f = new AuthResultsFilter(HOST)): string {
  const out: Buffer[] = [];
  for (const p of pieces) out.push(...f.feed([Buffer.from(p, "latin1")]));
  out.push(...f.end());
  return Buffer.concat(out).toString("latin1");
}
const whole = (s: string) => run([s]);
const bytewise = (s: string) => run([...s]);

const BODY = "\r\nAuthentication-Results: mx.petrel.test; spf=pass\r\nbody\r\n";

const cases: [string, string, string][] = [
  ["ours, plain", "Authentication-Results: mx.petrel.test; spf=pass smtp.mailfrom=a@b.test\r\n", ""],
  ["ours, other case", "authentication-RESULTS: MX.Petrel.TEST; dkim=pass\r\n", ""],
  ["ours, with a version", "Authentication-Results: mx.petrel.test 1; dkim=pass\r\n", ""],
  ["ours, trailing dot", "Authentication-Results: mx.petrel.test.; dkim=pass\r\n", ""],
  ["ours, no result", "Authentication-Results: mx.petrel.test; none\r\n", ""],
  ["ours, folded with continuation lines", "Authentication-Results: mx.petrel.test;\r\n\tspf=pass smtp.mailfrom=a@b.test;\r\n  dkim=pass header.d=b.test\r\n", ""],
  ["ours, id on a continuation line", "Authentication-Results:\r\n mx.petrel.test; spf=pass\r\n", ""],
  ["ours, after a comment", "Authentication-Results: (forged (nested) \\) comment)\r\n  mx.petrel.test; dmarc=pass\r\n", ""],
  ["ours, quoted", 'Authentication-Results: "mx.petrel.test"; dmarc=pass\r\n', ""],
  ["ours, white space before the colon", "Authentication-Results : mx.petrel.test; spf=pass\r\n", ""],
  ["ours, id at the end of the line", "Authentication-Results: mx.petrel.test\r\n\tspf=pass\r\n", ""],
  ["another host", "Authentication-Results: mx.other.test; spf=pass\r\n", "same"],
  ["a longer name with ours as prefix", "Authentication-Results: mx.petrel.test.evil.test; spf=pass\r\n", "same"],
  ["ours as a suffix", "Authentication-Results: evil-mx.petrel.test; spf=pass\r\n", "same"],
  ["no id", "Authentication-Results: ; spf=pass\r\n", "same"],
  ["a similar field name", "X-Authentication-Results: mx.petrel.test; spf=pass\r\n", "same"],
  ["ARC's field", "ARC-Authentication-Results: i=1; mx.petrel.test; spf=pass\r\n", "same"],
];

for (const [name, field, expected] of cases) {
  test(`header field: ${name}`, () => {
    const msg = `From: a@b.test\r\n${field}Subject: s\r\n${BODY}`;
    const want = expected === "same" ? msg : `From: a@b.test\r\nSubject: s\r\n${BODY}`;
    assert.equal(whole(msg), want);
    assert.equal(bytewise(msg), want);
  });
}

test("several fields of ours, first and last in the header, all go; the body's copy stays", () => {
  const msg = "Authentication-Results: mx.petrel.test; a=1\r\nReceived: x\r\nAuthentication-Results: mx.petrel.test; b=2\r\n folded\r\n" + BODY;
  assert.equal(whole(msg), "Received: x\r\n" + BODY);
});

test("a field of ours as the last line of a message without body or final line end", () => {
  assert.equal(whole("Subject: s\r\nAuthentication-Results: mx.petrel.test"), "Subject: s\r\n");
  assert.equal(whole("Subject: s\r\nAuthentication-Results: mx.other.test"), "Subject: s\r\nAuthentication-Results: mx.other.test");
});

test("a header without a blank line: the first non-field line starts the body, which is kept", () => {
  const msg = "Subject: s\r\nnot a field\r\nAuthentication-Results: mx.petrel.test; x=1\r\n";
  assert.equal(whole(msg), msg);
});

test("a body piece passes as the same Buffer (no copies once the header is over)", () => {
  const f = new AuthResultsFilter(HOST);
  f.feed([Buffer.from("Subject: s\r\n\r\n")]);
  const body = Buffer.from("Authentication-Results: mx.petrel.test; x\r\n");
  assert.equal(f.feed([body])[0], body);
});

test("a huge Authentication-Results field is held back at most MAX_HELD bytes, then passes", () => {
  const f = new AuthResultsFilter(HOST);
  const out: Buffer[] = [];
  out.push(...f.feed([Buffer.from("Authentication-Results: (")]));
  const chunk = Buffer.alloc(64 * 1024, "x");
  for (let i = 0; i < 32; i++) {
    out.push(...f.feed([chunk]));
    assert.ok(f.holding <= MAX_HELD, `holding ${f.holding}`);
  }
  out.push(...f.feed([Buffer.from(") mx.petrel.test; x\r\n\r\nbody")]), ...f.end());
  const text = Buffer.concat(out).toString("latin1");
  assert.equal(text.length, "Authentication-Results: (".length + 32 * chunk.length + ") mx.petrel.test; x\r\n\r\nbody".length);
});

test("a huge field name is held back at most MAX_HELD bytes", () => {
  const f = new AuthResultsFilter(HOST);
  for (let i = 0; i < 16; i++) {
    f.feed([Buffer.alloc(4096, "a")]);
    assert.ok(f.holding <= MAX_HELD);
  }
});

const headerLine = fc.constantFrom(
  "Authentication-Results: mx.petrel.test; spf=pass\r\n",
  "Authentication-Results: MX.PETREL.TEST;\r\n\tdkim=fail\r\n",
  "Authentication-Results: (c) mx.petrel.test; x\r\n",
  "Authentication-Results: other.test; spf=pass\r\n",
  "Subject: hello\r\n",
  "X-Long: " + "y".repeat(300) + "\r\n",
  " folded\r\n",
);

test("property: any split of the input gives the same output, and a second pass removes nothing more", () => {
  fc.assert(
    fc.property(fc.array(headerLine, { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 20 }), (lines, cuts) => {
      const msg = lines.join("") + "\r\nAuthentication-Results: mx.petrel.test; body\r\n";
      const once = whole(msg);
      const pieces: string[] = [];
      let at = 0;
      for (const c of cuts) {
        if (at >= msg.length) break;
        pieces.push(msg.slice(at, at + c));
        at += c;
      }
      pieces.push(msg.slice(at));
      assert.equal(run(pieces), once);
      assert.equal(whole(once), once);
      assert.ok(!/^Authentication-Results: *(\(c\) *)?mx\.petrel\.test/im.test(once.slice(0, once.indexOf("\r\n\r\n") + 2)));
    }),
    { numRuns: 300 },
  );
});

test("fields named in dropNames go whatever they say, folded lines too; longer names and the body are kept", () => {
  const f = () => new AuthResultsFilter(HOST, ["x-spam-status", "x-spam-score"]);
  const input =
    "X-Spam-Status: No, score=-5\r\n\tforged=yes\r\nSubject: hi\r\nx-spam-SCORE : -5\r\nX-Spam-Status-Extra: kept\r\nX-Spam-Flag: NO\r\n\r\nX-Spam-Status: No\r\n";
  const want = "Subject: hi\r\nX-Spam-Status-Extra: kept\r\nX-Spam-Flag: NO\r\n\r\nX-Spam-Status: No\r\n";
  assert.equal(run([input], f()), want);
  assert.equal(run([...input], f()), want);
  assert.equal(run([input]), input, "nothing dropped without dropNames");
});
