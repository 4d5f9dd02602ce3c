// Unit tests of the two header fields written from authentication results: exact text for the usual
// cases, RFC 8601 pvalue forms, folding, and fast-check properties that no outside text (HELO, MAIL FROM,
// From domain, DKIM tags, library comments) can end the field, add a field, or add a result.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { resinfoMethods } from "../testing/auth-results-reader.js";
import { authenticationResults, comment, propertyValue, receivedSpf, type AuthOutcome, type SpfOutcome } from "./auth-results.js";

const SPF: SpfOutcome = { identity: "mailfrom", result: "pass", domain: "example.com", sender: "alice@example.com", helo: "mail.example.com", clientIp: "192.0.2.1" };

const OUTCOME: AuthOutcome = {
  spf: SPF,
  helo: { ...SPF, identity: "helo", sender: "", domain: "mail.example.com" },
  dkim: [{ result: "pass", domain: "example.com", selector: "s1", algorithm: "rsa-sha256", signaturePrefix: "AbCdEf12" }],
  dmarc: { result: "pass", fromDomain: "example.com", policy: "reject", published: "reject" },
  arc: { result: "none" },
};

test("Authentication-Results: authserv-id, one resinfo per result, folded at spaces under 78 columns", () => {
  const h = authenticationResults("mx.petrel.test", OUTCOME);
  assert.equal(
    h,
    "Authentication-Results: mx.petrel.test; spf=pass\r\n" +
      " smtp.mailfrom=alice@example.com; spf=pass smtp.helo=mail.example.com;\r\n" +
      " dkim=pass header.d=example.com header.s=s1 header.a=rsa-sha256\r\n" +
      " header.b=AbCdEf12; dmarc=pass (p=reject) header.from=example.com\r\n" +
      " policy.dmarc=reject; arc=none\r\n",
  );
});

test("Received-SPF: result, comment, key-value pairs (RFC 7208 §9.1)", () => {
  assert.equal(
    receivedSpf("mx.petrel.test", SPF),
    "Received-SPF: pass (mx.petrel.test: domain example.com designates 192.0.2.1 as\r\n" +
      ' permitted sender) client-ip=192.0.2.1; envelope-from="alice@example.com";\r\n' +
      " helo=mail.example.com; identity=mailfrom; receiver=mx.petrel.test;\r\n",
  );
});

test("pvalues: token, address, quoted local-part, quoted-string; none when empty or too long", () => {
  assert.equal(propertyValue("example.com"), "example.com");
  assert.equal(propertyValue("alice@example.com"), "alice@example.com");
  assert.equal(propertyValue('"a b"@example.com'), '"a b"@example.com');
  assert.equal(propertyValue("a;b@example.com"), '"a;b"@example.com');
  assert.equal(propertyValue("x; dkim=pass"), '"x; dkim=pass"');
  assert.equal(propertyValue('say "hi"\\'), '"say \\"hi\\"\\\\"');
  assert.equal(propertyValue("ab/cd+ef"), '"ab/cd+ef"');
  assert.equal(propertyValue("a\r\nX-Evil: 1"), '"a X-Evil: 1"');
  assert.equal(propertyValue(" \t"), null);
  assert.equal(propertyValue("a".repeat(256)), null);
  assert.equal(comment("a (b) \\ c\r\nd"), "(a \\(b\\) \\\\ c d)");
  assert.equal(comment("x".repeat(200)), `(${"x".repeat(120)}...)`);
});

const hostile = fc.string({ unit: fc.constantFrom("a", ".", "@", ";", "(", ")", '"', "\\", "=", " ", "\r", "\n", "\t", "\x00", "\x7f", "\u0085", "\u2028", "é", "X-Evil:"), maxLength: 400 });

test("property: no outside text ends the field, adds a field or adds a result", () => {
  fc.assert(
    fc.property(hostile, hostile, hostile, hostile, hostile, (helo, sender, from, d, reason) => {
      const spf: SpfOutcome = { identity: "mailfrom", result: "fail", domain: from, sender, helo, clientIp: "192.0.2.1" };
      const o: AuthOutcome = {
        spf,
        helo: { ...spf, identity: "helo" },
        dkim: [{ result: "fail", domain: d, selector: reason, algorithm: d, signaturePrefix: reason.slice(0, 8), reason }],
        dmarc: { result: "fail", fromDomain: from, policy: "reject", published: "reject" },
        arc: { result: "fail", reason },
      };
      for (const h of [authenticationResults("mx.petrel.test", o), receivedSpf("mx.petrel.test", spf)]) {
        assert.ok(h.endsWith("\r\n"));
        const body = h.slice(0, -2);
        // Only folding line breaks (CRLF then a space); no other control character at all.
        assert.doesNotMatch(body.replace(/\r\n /g, " "), /[\x00-\x1f\x7f\u0080-\u009f\u2028\u2029]/);
        for (const line of body.split("\r\n")) assert.ok(Buffer.byteLength(line) <= 998, line);
      }
      const ar = authenticationResults("mx.petrel.test", o).slice("Authentication-Results: ".length, -2).replace(/\r\n /g, " ");
      assert.equal(resinfoMethods(ar), "spf,spf,dkim,dmarc,arc");
    }),
    { numRuns: 300 },
  );
});
