// Measures DKIM signing of a large queued message (default 50 MB): time, throughput and peak RSS growth
// of signMessage reading the file as the transport does (queue/queued-content.ts), with an RSA 2048 and an
// Ed25519 key; then checks the signed message with python3-dkim and mailauth. Run after a build:
//   node --max-semi-space-size=1 scripts/bench-dkim.mjs [MB]     (bin/petrel's young-generation size)
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DkimKeyStore, dnsRecord } from "../dist/src/dkim/dkim-key-store.js";
import { signMessage } from "../dist/src/dkim/dkim-signer.js";
import { crlfContent } from "../dist/src/queue/queued-content.js";
import { DKIM_OVERSIGNED_HEADERS, DKIM_SIGNED_HEADERS } from "../dist/src/config/schema.js";
import { mailauthDkimVerify, pythonDkimVerify, txtRecords } from "../dist/src/testing/dkim-verifiers.js";

const mb = Number(process.argv[2] ?? 50);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-bench-dkim-"));
try {
  const file = path.join(dir, "m.eml");
  const fd = fs.openSync(file, "w");
  fs.writeSync(fd, "Received: from client.test by mx.example.test;\n\tMon, 30 Nov 2026 12:00:00 +0000\nFrom: alice@example.test\nTo: bob@far.test\nSubject: big\n\n");
  const block = "Lorem ipsum dolor sit amet,  consectetur\tadipiscing elit, sed do eiusmod tempor \n".repeat(800);
  for (let n = 0; n < mb * 1024 * 1024; n += block.length) fs.writeSync(fd, block);
  fs.closeSync(fd);
  const store = new DkimKeyStore(path.join(dir, "dkim"));
  const keys = [await store.generate("example.test", { algorithm: "rsa", selector: "r" }), await store.generate("example.test", { algorithm: "ed25519", selector: "e" })];
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 2);
  const t0 = performance.now();
  const r = await signMessage(crlfContent(file), async () => keys, { headers: DKIM_SIGNED_HEADERS, oversign: DKIM_OVERSIGNED_HEADERS });
  const ms = performance.now() - t0;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  if (r.kind !== "signed") throw new Error(r.reason);
  const size = fs.statSync(file).size / 1048576;
  console.log(`signed ${size.toFixed(1)} MB (RSA 2048 + Ed25519) in ${Math.round(ms)} ms (${(size / (ms / 1000)).toFixed(0)} MB/s); RSS ${(base / 1048576).toFixed(1)} MB, peak +${((peak - base) / 1048576).toFixed(1)} MB`);
  const signed = Buffer.concat([r.fields, ...(await Array.fromAsync(crlfContent(file)))]);
  const zone = txtRecords(keys.map(dnsRecord));
  console.log(`python3-dkim: ${JSON.stringify(await pythonDkimVerify(signed, zone))}; mailauth: ${JSON.stringify((await mailauthDkimVerify(signed, zone)).map((x) => x.result))}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
