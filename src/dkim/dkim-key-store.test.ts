// The key store: what `petrel dkim generate` writes (modes, names, key sizes), the DNS record it prints
// (strings of at most 255 octets, the p= of each algorithm), refusals, listing with unusable files
// reported, and the signer's view following the folder as keys come and go.
import { describe, test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { UsageError } from "../core/errors.js";
import { txtRecords } from "../testing/dkim-verifiers.js";
import { defaultSelector, DkimKeyStore, dnsRecord, signingDomain } from "./dkim-key-store.js";

describe("DKIM key store", () => {
  let dir: string;
  let store: DkimKeyStore;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-dkim-keys-"));
    store = new DkimKeyStore(path.join(dir, "dkim"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("generate writes <key_dir>/<domain>/<selector>.<alg>.key, 0600 in 0700 folders, no temporary file left", async () => {
    const key = await store.generate("Example.TEST", { algorithm: "rsa", selector: "Mail2026" });
    assert.equal(key.domain, "example.test");
    assert.equal(key.selector, "mail2026");
    assert.equal(key.file, path.join(dir, "dkim", "example.test", "mail2026.rsa.key"));
    assert.equal(fs.statSync(key.file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(dir, "dkim")).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(dir, "dkim", "example.test")).mode & 0o777, 0o700);
    assert.deepEqual(fs.readdirSync(path.join(dir, "dkim", "example.test")), ["mail2026.rsa.key"]);
    const pem = fs.readFileSync(key.file, "utf8");
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.equal(crypto.createPrivateKey(pem).asymmetricKeyDetails?.modulusLength, 2048);
  });

  test("the RSA record: name, v=DKIM1; k=rsa; p=SubjectPublicKeyInfo, cut into strings of at most 255 octets", async () => {
    const key = await store.generate("example.test", { algorithm: "rsa", selector: "s1" });
    const line = dnsRecord(key);
    assert.match(line, /^s1\._domainkey\.example\.test\. IN TXT "v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+" "[A-Za-z0-9+/=]+"$/);
    const value = txtRecords([line]).get("s1._domainkey.example.test")!;
    const p = value.replace("v=DKIM1; k=rsa; p=", "");
    const pub = crypto.createPublicKey({ key: Buffer.from(p, "base64"), format: "der", type: "spki" });
    assert.equal(pub.asymmetricKeyDetails?.modulusLength, 2048);
    assert.ok(crypto.verify("sha256", Buffer.from("x"), pub, crypto.sign("sha256", Buffer.from("x"), key.privateKey)));
  });

  test("the Ed25519 record's p= is the raw 32-octet public key (RFC 8463 §4.2), one string", async () => {
    const key = await store.generate("example.test", { algorithm: "ed25519", selector: "s2" });
    const m = /^s2\._domainkey\.example\.test\. IN TXT "v=DKIM1; k=ed25519; p=([A-Za-z0-9+/=]{44})"$/.exec(dnsRecord(key));
    assert.ok(m, dnsRecord(key));
    const raw = Buffer.from(m[1]!, "base64");
    assert.equal(raw.length, 32);
    const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw]);
    const pub = crypto.createPublicKey({ key: spki, format: "der", type: "spki" });
    assert.ok(crypto.verify(null, Buffer.from("x"), pub, crypto.sign(null, Buffer.from("x"), key.privateKey)));
  });

  test("the default selector names the month and the algorithm, so RSA and Ed25519 keys of one month get two TXT names", async () => {
    const now = new Date("2026-03-05T00:00:00Z");
    assert.equal(defaultSelector("rsa", now), "petrel-202603-rsa");
    assert.equal(defaultSelector("ed25519", now), "petrel-202603-ed25519");
    const a = await store.generate("example.test", { algorithm: "rsa", now });
    const b = await store.generate("example.test", { algorithm: "ed25519", now });
    assert.deepEqual([a.selector, b.selector], ["petrel-202603-rsa", "petrel-202603-ed25519"]);
  });

  test("refusals: an existing selector (unless force), one selector for two algorithms, a bad domain or selector", async () => {
    const first = await store.generate("example.test", { algorithm: "ed25519", selector: "s" });
    await assert.rejects(store.generate("example.test", { algorithm: "ed25519", selector: "s" }), (e: unknown) => e instanceof UsageError && /exists already .*--force/.test(e.message));
    const replaced = await store.generate("example.test", { algorithm: "ed25519", selector: "s", force: true });
    assert.notEqual(dnsRecord(replaced), dnsRecord(first));
    await assert.rejects(store.generate("example.test", { algorithm: "rsa", selector: "s" }), /already has an ed25519 key: each key needs its own selector/);
    await assert.rejects(store.generate("exa mple.test", { algorithm: "rsa" }), /not a domain name: "exa mple.test"/);
    await assert.rejects(store.generate("../etc", { algorithm: "rsa" }), /not a domain name/);
    await assert.rejects(store.generate("[127.0.0.1]", { algorithm: "rsa" }), /not a domain name/);
    await assert.rejects(store.generate("example.test", { algorithm: "rsa", selector: "a/b" }), /not a selector: "a\/b"/);
    await assert.rejects(store.generate("example.test", { algorithm: "rsa", selector: "-a" }), /not a selector/);
  });

  test("two generates of one selector at once: one key is written, the other refused, no temporary file left", async () => {
    const results = await Promise.allSettled([1, 2, 3].map(() => store.generate("example.test", { algorithm: "ed25519", selector: "race" })));
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    for (const r of results) if (r.status === "rejected") assert.match((r.reason as Error).message, /exists already/);
    const kept = results.find((r) => r.status === "fulfilled")!;
    assert.deepEqual(fs.readdirSync(path.join(dir, "dkim", "example.test")), ["race.ed25519.key"]);
    const onDisk = crypto.createPrivateKey(fs.readFileSync(path.join(dir, "dkim", "example.test", "race.ed25519.key")));
    assert.ok(onDisk.equals((kept as PromiseFulfilledResult<{ privateKey: crypto.KeyObject }>).value.privateKey), "the key on disk is the one reported");
  });

  test("signingDomain: lowercase A-labels; literals and junk refused", () => {
    assert.equal(signingDomain("Bücher.Example"), "xn--bcher-kva.example");
    assert.equal(signingDomain("[192.0.2.1]"), null);
    assert.equal(signingDomain("a..b"), null);
  });

  test("list: every key by domain, RSA first; a corrupt file, an RSA key under 1024 bits (RFC 8301) or one whose key does not match its name is reported, not used", async () => {
    await store.generate("b.test", { algorithm: "ed25519", selector: "e" });
    await store.generate("b.test", { algorithm: "rsa", selector: "r" });
    await store.generate("a.test", { algorithm: "rsa", selector: "r" });
    fs.writeFileSync(path.join(dir, "dkim", "a.test", "bad.rsa.key"), "not a key\n");
    fs.copyFileSync(path.join(dir, "dkim", "b.test", "e.ed25519.key"), path.join(dir, "dkim", "a.test", "wrong.rsa.key"));
    fs.writeFileSync(path.join(dir, "dkim", "a.test", "README"), "ignored\n");
    const weak = crypto.generateKeyPairSync("rsa", { modulusLength: 768 }).privateKey.export({ type: "pkcs8", format: "pem" });
    fs.writeFileSync(path.join(dir, "dkim", "a.test", "short.rsa.key"), weak);
    const { keys, problems } = await store.list();
    assert.deepEqual(keys.map((k) => `${k.domain} ${k.selector} ${k.algorithm}`), ["a.test r rsa", "b.test r rsa", "b.test e ed25519"]);
    assert.equal(problems.length, 3);
    assert.match(problems[0]!, /a\.test\/bad\.rsa\.key: .*skipped$/);
    assert.match(problems[1]!, /a\.test\/short\.rsa\.key: RSA key shorter than 1024 bits \(RFC 8301\), skipped$/);
    assert.match(problems[2]!, /a\.test\/wrong\.rsa\.key: holds an ed25519 key, not rsa, skipped$/);
  });

  test("keysFor follows the folder: a key generated or removed while running is used or dropped for the next message", async () => {
    assert.deepEqual((await store.keysFor("example.test")).keys, []);
    const rsa = await store.generate("example.test", { algorithm: "rsa", selector: "r" });
    assert.deepEqual((await store.keysFor("example.test")).keys.map((k) => k.selector), ["r"]);
    await store.generate("example.test", { algorithm: "ed25519", selector: "e" });
    assert.deepEqual((await store.keysFor("example.test")).keys.map((k) => k.selector), ["r", "e"]);
    fs.unlinkSync(rsa.file);
    assert.deepEqual((await store.keysFor("example.test")).keys.map((k) => k.selector), ["e"]);
  });
});
