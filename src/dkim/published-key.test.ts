// checkPublished against the answers a resolver can give: the record as `dkim generate` prints it (its
// strings split at 255 octets), no record, a DNS failure, two records, the wrong algorithm or key, a
// revoked key, and p= with white space in it.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DkimKeyStore, dnsRecord, recordValue, type DkimKey } from "./dkim-key-store.js";
import { checkPublished, type ResolveTxt } from "./published-key.js";

describe("checkPublished", () => {
  let dir: string;
  let rsa: DkimKey;
  let other: DkimKey;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-dkim-pub-"));
    const store = new DkimKeyStore(dir);
    rsa = await store.generate("example.test", { algorithm: "rsa", selector: "r" });
    other = await store.generate("example.test", { algorithm: "ed25519", selector: "e" });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const answer = (records: string[][]): ResolveTxt => async (name) => {
    assert.equal(name, "r._domainkey.example.test");
    return records;
  };
  const failing = (code: string): ResolveTxt => async () => {
    throw Object.assign(new Error(`queryTxt ${code}`), { code });
  };

  test("the record as printed (strings of 255 octets, joined by the resolver's caller) is ok", async () => {
    const strings = [...dnsRecord(rsa).matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
    assert.equal(strings.length, 2);
    assert.deepEqual(await checkPublished(rsa, answer([["v=spf1 -all"], strings])), { kind: "ok" });
    const spaced = recordValue(rsa).replace(/(.{60})/g, "$1 ");
    assert.deepEqual(await checkPublished(rsa, answer([[spaced]])), { kind: "ok" });
  });

  test("no name, no record, no DKIM record: missing; a DNS failure is not", async () => {
    assert.equal((await checkPublished(rsa, failing("ENOTFOUND"))).kind, "missing");
    assert.equal((await checkPublished(rsa, failing("ENODATA"))).kind, "missing");
    assert.deepEqual(await checkPublished(rsa, answer([["v=spf1 -all"]])), { kind: "missing", detail: "no DKIM key record among the TXT records at r._domainkey.example.test" });
    assert.deepEqual(await checkPublished(rsa, failing("ESERVFAIL")), { kind: "dns-error", detail: "ESERVFAIL looking up r._domainkey.example.test; try again later" });
  });

  test("wrong: two records, another algorithm, another key, a revoked key", async () => {
    const mine = recordValue(rsa);
    const theirs = recordValue(other);
    assert.match((await checkPublished(rsa, answer([[mine], [mine]]))).kind, /^wrong$/);
    assert.deepEqual(await checkPublished(rsa, answer([[theirs]])), { kind: "wrong", detail: "the record says k=ed25519, the key is rsa" });
    const otherRsa = mine.replace(/p=.{20}/, "p=MIIBIjANBgkqhkiG9w0B");
    assert.equal((await checkPublished(rsa, answer([[otherRsa.replace(/.$/, "X")]]))).kind, "wrong");
    assert.deepEqual(await checkPublished(rsa, answer([["v=DKIM1; k=rsa; p="]])), { kind: "wrong", detail: "the record has an empty p=: the key is revoked (RFC 6376 §3.6.1)" });
  });
});
