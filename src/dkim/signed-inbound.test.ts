// What a receiving Petrel makes of mail this signer signed: the inbound auth check (src/trust/auth-check.ts,
// mailauth in strict mode) with the keys' records on the loopback DNS server, as printed by `dkim generate`,
// and a DMARC p=reject domain whose SPF fails: DKIM alone must carry DMARC (d= is the From: domain exactly).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { DKIM_OVERSIGNED_HEADERS, DKIM_SIGNED_HEADERS } from "../config/schema.js";
import { startDnsServer, type DnsServer } from "../testing/dns-server.js";
import { txtRecords } from "../testing/dkim-verifiers.js";
import { createAuthCheck } from "../trust/auth-check.js";
import type { CheckResult } from "../trust/message-check.js";
import { DkimKeyStore, dnsRecord, type DkimKey } from "./dkim-key-store.js";
import { signMessage } from "./dkim-signer.js";

describe("a Petrel-signed message at a receiving Petrel", () => {
  let dir: string;
  let dns: DnsServer;
  let keys: DkimKey[];
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-dkim-inbound-"));
    const store = new DkimKeyStore(dir);
    keys = [await store.generate("example.test", { algorithm: "rsa", selector: "r" }), await store.generate("example.test", { algorithm: "ed25519", selector: "e" })];
    const published = Object.fromEntries([...txtRecords(keys.map(dnsRecord))].map(([name, value]) => [name, { TXT: [value] }]));
    dns = await startDnsServer({
      ...published,
      "example.test": { TXT: ["v=spf1 -all"] },
      "_dmarc.example.test": { TXT: ["v=DMARC1; p=reject"] },
    });
  });
  after(async () => {
    await dns.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function receive(message: Buffer): Promise<CheckResult> {
    const check = createAuthCheck({
      hostname: "mx.far.test",
      dnsServers: [`127.0.0.1:${dns.port}`],
      policy: { checks: true, spf_fail: "tag", dmarc_reject: "reject", dmarc_quarantine: "junk", dns_temperror: "tag" },
      dnsTimeoutMs: 500,
      dnsTries: 1,
    });
    const run = check.start({ id: "Q1", peerAddress: "192.0.2.9", helo: "mx.example.test", ptrName: null, receivedFrom: "from mx.example.test (unknown [192.0.2.9])", sender: "alice@example.test", recipients: ["bob@far.test"], authenticated: false, tls: false });
    assert.ok(run);
    for (let at = 0; at < message.length; at += 1000) run.write(message.subarray(at, at + 1000));
    return run.finish({ size: message.length, open: () => Readable.from([message]) });
  }

  const content = Buffer.from("From: Alice <alice@example.test>\r\nTo: bob@far.test\r\nSubject: from Petrel\r\nDate: Mon, 30 Nov 2026 12:00:00 +0000\r\nMessage-ID: <x@example.test>\r\n\r\nHello Bob.\r\n");

  test("both signatures pass and DMARC passes through DKIM although SPF fails; unsigned, the same message is rejected", async () => {
    const r = await signMessage((async function* () { yield content; })(), async () => keys, { headers: DKIM_SIGNED_HEADERS, oversign: DKIM_OVERSIGNED_HEADERS });
    assert.equal(r.kind, "signed");
    const signed = await receive(Buffer.concat([r.kind === "signed" ? r.fields : Buffer.alloc(0), content]));
    const ar = signed.headers.find((h) => h.startsWith("Authentication-Results:"))!.replace(/\r\n[ \t]+/g, " ");
    assert.match(ar, /dkim=pass header\.d=example\.test header\.s=r header\.a=rsa-sha256/);
    assert.match(ar, /dkim=pass header\.d=example\.test header\.s=e header\.a=ed25519-sha256/);
    assert.match(ar, /spf=fail/);
    assert.match(ar, /dmarc=pass \(p=reject\) header\.from=example\.test/);
    assert.equal(signed.verdict.kind, "accept");
    const unsigned = await receive(content);
    assert.equal(unsigned.verdict.kind, "reject");
  });
});
