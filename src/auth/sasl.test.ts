// Unit tests of the SASL PLAIN/LOGIN state machine (RFC 4616, draft-murchison-sasl-login, RFC 4954 §4):
// exact vectors for each step, strict base64, cancel, "=" as empty initial response, authzid rules,
// length caps, and a property that no client input throws.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { MAX_SASL_PASSWORD_BYTES, MAX_SASL_USER_BYTES, SASL_MECHANISMS, decodeBase64Strict, parsePlain, startSasl, type SaslExchange, type SaslStep } from "./sasl.js";

const b64 = (s: string | Buffer) => (typeof s === "string" ? Buffer.from(s, "utf8") : s).toString("base64");

function start(mechanism: string, initial?: string): SaslExchange {
  const ex = startSasl(mechanism, initial);
  assert.ok(!("kind" in ex), `${mechanism} should be supported`);
  return ex;
}

const alice = { kind: "credentials", authzid: "", user: "alice", password: "secret" } as const;

test("mechanisms offered: PLAIN and LOGIN; others (and non-ASCII look-alikes) unsupported", () => {
  assert.deepEqual(SASL_MECHANISMS, ["PLAIN", "LOGIN"]);
  assert.deepEqual(startSasl("CRAM-MD5", undefined), { kind: "unsupported" });
  assert.deepEqual(startSasl("PLA\u0131N", undefined), { kind: "unsupported" });
  assert.deepEqual(startSasl("", undefined), { kind: "unsupported" });
  assert.deepEqual(start("plain", "AGFsaWNlAHNlY3JldA==").first(), alice);
});

test("PLAIN with initial response: the RFC 4616 vector", () => {
  assert.deepEqual(start("PLAIN", "AGFsaWNlAHNlY3JldA==").first(), alice);
});

test("PLAIN without initial response: an empty challenge, then the message", () => {
  const ex = start("PLAIN", undefined);
  assert.deepEqual(ex.first(), { kind: "challenge", text: "" });
  assert.deepEqual(ex.next("AGFsaWNlAHNlY3JldA=="), alice);
  assert.deepEqual(ex.next("AGFsaWNlAHNlY3JldA=="), { kind: "malformed", why: "exchange already finished" });
});

test("PLAIN: '*' cancels; '=' is an empty initial response, which is malformed", () => {
  const ex = start("PLAIN", undefined);
  ex.first();
  assert.deepEqual(ex.next("*"), { kind: "cancelled" });
  assert.deepEqual(start("PLAIN", "=").first(), { kind: "malformed", why: "PLAIN message needs two NULs" });
});

test("PLAIN: authzid empty or the same account is accepted, another is refused", () => {
  assert.deepEqual(start("PLAIN", b64("Alice@Example.test\0alice@example.test\0pw")).first(), {
    kind: "credentials", authzid: "Alice@Example.test", user: "alice@example.test", password: "pw",
  });
  assert.deepEqual(start("PLAIN", b64("bob\0alice\0secret")).first(), { kind: "refused", why: "authorization identity differs from the user" });
  // U+212A KELVIN SIGN does not fold to "k": not the same account.
  assert.equal(start("PLAIN", b64("\u212Aate\0kate\0pw")).first().kind, "refused");
});

test("PLAIN: malformed messages, each with its reason", () => {
  const why = (s: string) => {
    const step = parsePlain(s);
    return step.kind === "malformed" ? step.why : step.kind;
  };
  assert.equal(why("AGFsaWNlAHNlY3JldA="), "invalid base64"); // bad padding
  assert.equal(why("AGFsaWNlAHNlY3JldA"), "invalid base64"); // no padding
  assert.equal(why("AGFsaWNlAHNl Y3JldA=="), "invalid base64"); // white space inside
  assert.equal(why(" AGFsaWNlAHNlY3JldA=="), "invalid base64");
  assert.equal(why("AGFsaWNlAHNlY3JldA==\r"), "invalid base64");
  assert.equal(why("AGFsaWNl-HNlY3JldA=="), "invalid base64"); // base64url alphabet
  assert.equal(why("AGFsaWNlAHNlY3JldB=="), "invalid base64"); // non-zero pad bits
  assert.equal(why("=AGFsaWNlAHNlY3JldA="), "invalid base64");
  assert.equal(why(b64("alice\0secret")), "PLAIN message needs two NULs");
  assert.equal(why(b64("\0alice\0se\0cret")), "PLAIN message has more than two NULs");
  assert.equal(why(b64("\0\0secret")), "empty user");
  assert.equal(why(b64("\0alice\0")), "empty password");
  assert.equal(why(b64("\0al\nice\0secret")), "NUL or control character in user");
  assert.equal(why(b64(Buffer.from([0, 0x61, 0xff, 0, 0x70]))), "user is not UTF-8");
  assert.equal(why(b64(Buffer.from([0, 0x61, 0, 0xc3, 0x28]))), "password is not UTF-8");
  assert.equal(why(b64(Buffer.from([0xed, 0xa0, 0x80, 0, 0x61, 0, 0x70]))), "authzid is not UTF-8"); // a surrogate
  assert.equal(why(b64(`\0${"u".repeat(MAX_SASL_USER_BYTES + 1)}\0pw`)), `user longer than ${MAX_SASL_USER_BYTES} bytes`);
  assert.equal(why(b64(`\0alice\0${"p".repeat(MAX_SASL_PASSWORD_BYTES + 1)}`)), `password longer than ${MAX_SASL_PASSWORD_BYTES} bytes`);
  assert.equal(why("A".repeat(100_000)), "invalid base64"); // over the cap: not even decoded
  assert.equal(why(b64(`\0${"u".repeat(MAX_SASL_USER_BYTES)}\0${"p".repeat(MAX_SASL_PASSWORD_BYTES)}`)), "credentials");
  assert.equal(why(b64("\0j\u00fcrgen@example.test\0p\u00e4ss w\u00f6rd")), "credentials");
});

test("strict base64: one spelling per byte string", () => {
  assert.deepEqual(decodeBase64Strict(""), Buffer.alloc(0));
  assert.deepEqual(decodeBase64Strict("YWxpY2U="), Buffer.from("alice"));
  assert.equal(decodeBase64Strict("YWxp Y2U="), null);
  assert.equal(decodeBase64Strict("YWxpY2U"), null);
  assert.equal(decodeBase64Strict("YWxpY2U=="), null);
  assert.equal(decodeBase64Strict("YWxpY2V="), null); // pad bits set
  assert.deepEqual(decodeBase64Strict("YQ=="), Buffer.from("a"));
  assert.equal(decodeBase64Strict("YR=="), null); // pad bits set
  assert.equal(decodeBase64Strict("="), null);
});

test("LOGIN: Username:, Password:, then the credentials", () => {
  const ex = start("LOGIN", undefined);
  assert.deepEqual(ex.first(), { kind: "challenge", text: "Username:" });
  assert.deepEqual(ex.next("YWxpY2U="), { kind: "challenge", text: "Password:" });
  assert.deepEqual(ex.next("c2VjcmV0"), alice);
  assert.deepEqual(ex.next("c2VjcmV0"), { kind: "malformed", why: "exchange already finished" });
});

test("LOGIN: the user name as initial response skips the first challenge; '=' is an empty user", () => {
  const ex = start("LOGIN", "YWxpY2U=");
  assert.deepEqual(ex.first(), { kind: "challenge", text: "Password:" });
  assert.deepEqual(ex.next("c2VjcmV0"), alice);
  assert.deepEqual(start("login", "=").first(), { kind: "malformed", why: "empty user" });
});

test("LOGIN: '*' cancels at either challenge; bad lines end the exchange", () => {
  const a = start("LOGIN", undefined);
  a.first();
  assert.deepEqual(a.next("*"), { kind: "cancelled" });
  assert.deepEqual(a.next("YWxpY2U="), { kind: "malformed", why: "exchange already finished" });
  const b = start("LOGIN", undefined);
  b.first();
  b.next("YWxpY2U=");
  assert.deepEqual(b.next("*"), { kind: "cancelled" });
  const c = start("LOGIN", undefined);
  c.first();
  assert.deepEqual(c.next("YWxp Y2U="), { kind: "malformed", why: "invalid base64" });
  const d = start("LOGIN", undefined);
  d.first();
  d.next("YWxpY2U=");
  assert.deepEqual(d.next(""), { kind: "malformed", why: "empty password" });
  const e = start("LOGIN", undefined);
  e.first();
  assert.deepEqual(e.next(b64("al\0ice")), { kind: "malformed", why: "NUL or control character in user" });
});

test("no input makes an exchange throw, and every exchange ends within three lines", () => {
  const line = fc.oneof(
    fc.string(),
    fc.constantFrom("*", "=", "", "AGFsaWNlAHNlY3JldA==", "YWxpY2U=", "c2VjcmV0"),
    fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u).toString("base64")),
    fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u).toString("latin1")),
  );
  fc.assert(
    fc.property(fc.constantFrom("PLAIN", "LOGIN", "plain", "XOAUTH2"), fc.option(line, { nil: undefined }), fc.array(line, { maxLength: 5 }), (mech, initial, lines) => {
      const ex = startSasl(mech, initial);
      if ("kind" in ex) return;
      const steps: SaslStep[] = [ex.first(), ...lines.map((l) => ex.next(l))];
      const end = steps.findIndex((s) => s.kind !== "challenge");
      // At most two challenges (LOGIN), and after the end only "exchange already finished".
      assert.ok(end === -1 ? steps.length <= 3 : end <= 2);
      if (end >= 0) for (const s of steps.slice(end + 1)) assert.deepEqual(s, { kind: "malformed", why: "exchange already finished" });
    }),
    { numRuns: 2000 },
  );
});
