// The signer against two independent verifiers (Debian's python3-dkim and mailauth), with keys and DNS
// records made by the key store exactly as `petrel dkim generate` makes them: RSA and Ed25519 alone and
// together, a body or header changed after signing fails, oversigned fields, the messages it must not
// sign, and any split of the content into chunks giving the same signature.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { DKIM_OVERSIGNED_HEADERS, DKIM_SIGNED_HEADERS } from "../config/schema.js";
import { mailauthDkimVerify, pythonDkimVerify, pythonDkimVerifyAll, txtRecords } from "../testing/dkim-verifiers.js";
import { DkimKeyStore, dnsRecord, type DkimKey } from "./dkim-key-store.js";
import { MAX_HEADER, signMessage, type SignOptions } from "./dkim-signer.js";

const OPTS: SignOptions = { headers: DKIM_SIGNED_HEADERS, oversign: DKIM_OVERSIGNED_HEADERS, now: () => new Date("2026-11-30T12:00:00Z") };

async function* chunks(...parts: (string | Buffer)[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.isBuffer(p) ? p : Buffer.from(p, "latin1");
}

const MESSAGE =
  "Received: from client.test by mx.example.test; Mon, 30 Nov 2026 12:00:00 +0000\r\n" +
  "From: Alice Example <alice@Example.TEST>\r\n" +
  "To: bob@far.test,\r\n   carol@far.test\r\n" +
  "Subject:   a  folded\r\n\tsubject with  spaces   \r\n" +
  "Date: Mon, 30 Nov 2026 12:00:00 +0000\r\n" +
  "Message-ID: <1@example.test>\r\n" +
  "MIME-Version: 1.0\r\n" +
  "Content-Type: text/plain; charset=utf-8\r\n" +
  "\r\n" +
  "Hello  Bob,\t \r\n \r\nc'est l'été.  \r\n\r\n\r\n";

describe("DKIM signer", () => {
  let dir: string;
  let store: DkimKeyStore;
  let rsa: DkimKey;
  let ed: DkimKey;
  let records: Map<string, string>;
  const keysOf = (keys: readonly DkimKey[]) => async (domain: string) => keys.filter((k) => k.domain === domain);

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-dkim-"));
    store = new DkimKeyStore(path.join(dir, "dkim"));
    rsa = await store.generate("example.test", { algorithm: "rsa", selector: "s-rsa" });
    ed = await store.generate("example.test", { algorithm: "ed25519", selector: "s-ed" });
    records = txtRecords([dnsRecord(rsa), dnsRecord(ed)]);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function signed(message: string | Buffer, keys: readonly DkimKey[] = [rsa, ed], opts = OPTS): Promise<Buffer> {
    const r = await signMessage(chunks(message), keysOf(keys), opts);
    assert.equal(r.kind, "signed", JSON.stringify(r));
    return Buffer.concat([r.kind === "signed" ? r.fields : Buffer.alloc(0), Buffer.from(message as string, "latin1")]);
  }

  test("RSA and Ed25519 together (RFC 8463 dual signing): both signatures verify with python3-dkim and with mailauth", async () => {
    const msg = await signed(MESSAGE);
    const text = msg.toString("latin1");
    const unfolded = text.replace(/\r\n\t/g, " ");
    const t = Date.parse("2026-11-30T12:00:00Z") / 1000;
    assert.match(unfolded, new RegExp(`^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example\\.test; s=s-rsa; t=${t}; h=`));
    assert.match(unfolded, new RegExp(`\r\nDKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example\\.test; s=s-ed; t=${t}; h=`));
    for (const line of text.split("\r\n")) assert.ok(line.length <= 78, `line too long: ${line}`);
    assert.deepEqual(await pythonDkimVerify(msg, records), [true, true]);
    assert.deepEqual(await mailauthDkimVerify(msg, records), [
      { result: "pass", domain: "example.test", algo: "rsa-sha256" },
      { result: "pass", domain: "example.test", algo: "ed25519-sha256" },
    ]);
  });

  test("one key alone: RSA verifies, and Ed25519 verifies", async () => {
    assert.deepEqual(await pythonDkimVerifyAll([await signed(MESSAGE, [rsa]), await signed(MESSAGE, [ed])], records), [[true], [true]]);
  });

  test("h= lists each present field bottom-up and the oversigned ones once more; absent ones only when oversigned", async () => {
    const text = (await signed(MESSAGE, [rsa])).toString("latin1");
    const h = /h=([^;]*);/.exec(text.replace(/\r\n\t/g, ""))![1]!;
    assert.equal(h, "From:From:Subject:Subject:Date:Date:Message-ID:Message-ID:To:To:Cc:MIME-Version:MIME-Version:Content-Type:Content-Type:Content-Transfer-Encoding");
  });

  test("a body changed after signing fails both verifiers; white space changes that relaxed ignores do not", async () => {
    const msg = (await signed(MESSAGE)).toString("latin1");
    const changed = Buffer.from(msg.replace("Hello  Bob", "Hello  Eve"), "latin1");
    const respaced = Buffer.from(msg.replace("Hello  Bob,", "Hello \t Bob,").replace("l'été.  \r\n", "l'été.\r\n") + "\r\n\r\n", "latin1");
    assert.deepEqual(await pythonDkimVerifyAll([changed, respaced], records), [[false, false], [true, true]]);
    assert.deepEqual((await mailauthDkimVerify(changed, records)).map((r) => r.result), ["neutral", "neutral"]);
  });

  test("a From, Subject or To added on top after signing breaks the signature (oversigned); an added List-Id does not", async () => {
    // On top, where a reader looks: a verifier picks the bottom instance, so only oversigning catches it.
    const msg = (await signed(MESSAGE, [rsa])).toString("latin1");
    const add = (field: string) => Buffer.from(field + msg, "latin1");
    const forged = ["From: mallory@evil.test\r\n", "Subject: urgent\r\n", "To: victim@far.test\r\n"].map(add);
    const listed = add("List-Id: <friends.far.test>\r\n");
    assert.deepEqual(await pythonDkimVerifyAll([...forged, listed, Buffer.from(msg, "latin1")], records), [[false], [false], [false], [true], [true]]);
  });

  test("a message without a body, and one with an empty body, are signed and verify", async () => {
    const msgs = [await signed("From: alice@example.test\r\nSubject: no body\r\n"), await signed("From: alice@example.test\r\nSubject: empty\r\n\r\n")];
    assert.deepEqual(await pythonDkimVerifyAll(msgs, records), [[true, true], [true, true]]);
  });

  test("UTF-8 in header values and body is signed byte for byte", async () => {
    const m = Buffer.from("From: =?utf-8?q?J=C3=BCrgen?= <jurgen@example.test>\r\nSubject: Grüße aus Köln\r\n\r\nÄrger über Öl\r\n", "utf8");
    const r = await signMessage(chunks(m), keysOf([rsa, ed]), OPTS);
    assert.equal(r.kind, "signed");
    const msg = Buffer.concat([r.kind === "signed" ? r.fields : Buffer.alloc(0), m]);
    assert.deepEqual(await pythonDkimVerify(msg, records), [true, true]);
    assert.deepEqual((await mailauthDkimVerify(msg, records)).map((x) => x.result), ["pass", "pass"]);
  });

  test("not signed, with the reason: no From, two From fields, two domains in From, no key for the domain, a non-field line, a huge header", async () => {
    const reasons: string[] = [];
    const cases = [
      "Subject: no from\r\n\r\nx\r\n",
      "From: a@example.test\r\nFrom: b@example.test\r\n\r\nx\r\n",
      "From: a@example.test, b@other.test\r\n\r\nx\r\n",
      "From: a@other.test\r\n\r\nx\r\n",
      "From: a@example.test\r\nthis is not a field\r\n\r\nx\r\n",
      "From: a@example.test\r\nX-Big: " + "y".repeat(MAX_HEADER) + "\r\n\r\nx\r\n",
      "From: <@>\r\n\r\nx\r\n",
    ];
    for (const m of cases) {
      const r = await signMessage(chunks(...Buffer.from(m, "latin1").toString("latin1").match(/[\s\S]{1,65536}/g)!), keysOf([rsa]), OPTS);
      assert.equal(r.kind, "unsigned", m.slice(0, 60));
      if (r.kind === "unsigned") reasons.push(r.reason);
    }
    assert.deepEqual(reasons, [
      "no From: field",
      "more than one From: field",
      "the From: field names addresses in several domains",
      "no DKIM key for other.test",
      "a line in the header section is not a header field",
      `header section longer than ${MAX_HEADER} octets`,
      'the From: address "@" has no usable domain',
    ]);
  });

  test("a message whose domain has no key is not read past its header", async () => {
    let pulled = 0;
    async function* lazy(): AsyncGenerator<Buffer> {
      pulled++;
      yield Buffer.from("From: a@other.test\r\n\r\nfirst piece\r\n");
      pulled++;
      throw new Error("the body was read");
    }
    const r = await signMessage(lazy(), keysOf([rsa]), OPTS);
    assert.deepEqual(r, { kind: "unsigned", reason: "no DKIM key for other.test" });
    assert.equal(pulled, 1);
  });

  test("property: any split of the content into chunks gives the same signature fields", async () => {
    const whole = await signMessage(chunks(MESSAGE), keysOf([rsa, ed]), OPTS);
    assert.equal(whole.kind, "signed");
    const bytes = Buffer.from(MESSAGE, "latin1");
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }), async (cuts) => {
        const at = [0, ...cuts.sort((a, b) => a - b), bytes.length];
        const parts = at.slice(1).map((end, i) => bytes.subarray(at[i], end));
        const r = await signMessage(chunks(...parts), keysOf([rsa, ed]), OPTS);
        assert.deepEqual(r, whole);
      }),
      { numRuns: 60 },
    );
  });
});
