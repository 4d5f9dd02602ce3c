#!/usr/bin/env node
// What inbound authentication costs: the "auth" check (SPF for MAIL FROM and HELO, DKIM, DMARC, ARC) run
// in process on a 10 KB message signed with DKIM (RSA 2048, by python3-dkim's dkimsign), DNS answered by
// the loopback test server (src/testing/dns-server.ts). Runs CONC checks at a time for SECONDS and prints
// checks per second and the median latency. Needs `npx tsc -p .` first (it loads dist/).
// Usage: node scripts/bench-auth-check.mjs [--seconds 5] [--conc 1] [--size 10240]
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { opt } from "./bench-options.mjs";

const SECONDS = opt("seconds", 5);
const CONC = opt("conc", 1);
const SIZE = opt("size", 10240);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { createAuthCheck } = await import(path.join(ROOT, "dist/src/trust/auth-check.js"));
const { startDnsServer } = await import(path.join(ROOT, "dist/src/testing/dns-server.js"));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-bench-auth-"));
const keyFile = path.join(dir, "k.pem");
execFileSync("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", keyFile], { stdio: "ignore" });
const publicKey = crypto.createPublicKey(fs.readFileSync(keyFile)).export({ type: "spki", format: "der" }).toString("base64");
const line = "The quick brown fox jumps over the lazy dog, again and again, for the benchmark.\r\n";
const body = line.repeat(Math.ceil(SIZE / line.length));
const plain = `From: News <news@example.test>\r\nTo: bob@petrel.test\r\nSubject: bench\r\nDate: Mon, 30 Nov 2026 12:00:00 +0000\r\nMessage-ID: <b@example.test>\r\n\r\n${body}`;
const signed = Buffer.from(execFileSync("dkimsign", ["--bcanon", "relaxed", "sel", "example.test", keyFile], { input: plain }));
fs.rmSync(dir, { recursive: true, force: true });

const dns = await startDnsServer({
  "example.test": { TXT: ["v=spf1 ip4:192.0.2.10 -all"] },
  "mx.example.test": { TXT: ["v=spf1 ip4:192.0.2.10 -all"] },
  "sel._domainkey.example.test": { TXT: [`v=DKIM1; k=rsa; p=${publicKey}`] },
  "_dmarc.example.test": { TXT: ["v=DMARC1; p=reject"] },
});
const check = createAuthCheck({
  hostname: "mx.petrel.test",
  dnsServers: [`127.0.0.1:${dns.port}`],
  policy: { checks: true, spf_fail: "tag", dmarc_reject: "reject", dmarc_quarantine: "junk", dns_temperror: "tag" },
});
const ctx = { id: "B", peerAddress: "192.0.2.10", helo: "mx.example.test", ptrName: null, sender: "news@example.test", recipients: ["bob@petrel.test"], authenticated: false, tls: false };

async function one() {
  const run = check.start(ctx);
  for (let at = 0; at < signed.length; at += 65536) run.write(signed.subarray(at, at + 65536));
  const r = await run.finish({ size: signed.length, open: () => Readable.from([signed]) });
  if (!/dkim=pass/.test(r.headers[0]) || !/dmarc=pass/.test(r.headers[0])) throw new Error(`unexpected result: ${r.headers[0]}`);
}

for (let i = 0; i < 50; i++) await one(); // warm up
const latencies = [];
let done = 0;
const end = performance.now() + SECONDS * 1000;
const started = performance.now();
await Promise.all(
  Array.from({ length: CONC }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      await one();
      latencies.push(performance.now() - t);
      done++;
    }
  }),
);
const elapsed = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const median = latencies[Math.floor(latencies.length / 2)];
const p99 = latencies[Math.floor(latencies.length * 0.99)];
console.log(
  `auth check, ${signed.length} byte DKIM-signed message, ${CONC} at a time: ${(done / elapsed).toFixed(0)} checks/s, median ${median.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, ` +
    `${dns.queries.length} DNS queries in all (${(dns.queries.length / (done + 50)).toFixed(1)} per message)`,
);
await dns.close();
