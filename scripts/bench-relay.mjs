#!/usr/bin/env node
// How fast Petrel's relay empties its queue: writes N queued 1 KB messages (recipients spread over D
// domains) into a fresh data_dir with the real spool while the server is stopped, then starts `petrel
// serve` with Postfix's smtp-sink (Debian package postfix) as the smarthost on loopback, and measures
// the time until the queue is empty. Usage: node scripts/bench-relay.mjs [--messages 10000] [--domains 100]
// Postfix comparison: not scripted yet (see the issue notes).
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { opt } from "./bench-options.mjs";

const N = opt("messages", 10000);
const D = opt("domains", 100);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { Spool } = await import(path.join(ROOT, "dist/src/spool/spool.js"));
const { silentLogger } = await import(path.join(ROOT, "dist/src/core/log.js"));

const freePort = () => new Promise((resolve) => { const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); }); });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-bench-relay-"));
const dataDir = path.join(dir, "data");
fs.mkdirSync(dataDir, { mode: 0o700 });
const sinkPort = await freePort();
const sink = spawn("/usr/sbin/smtp-sink", [...(process.getuid?.() === 0 ? ["-u", "nobody"] : []), "-c", `127.0.0.1:${sinkPort}`, "1000"], { stdio: ["ignore", "pipe", "inherit"] });
let sinkOut = "";
sink.stdout.on("data", (d) => (sinkOut += d));

const body = Buffer.from(`From: bench@example.test\r\nSubject: relay bench\r\n\r\n${"x".repeat(70)}\r\n`.repeat(1).padEnd(1024, "y") + "\r\n");
const spool = new Spool(dataDir, silentLogger());
let t = performance.now();
for (let i = 0; i < N; i++) {
  const to = `user${i}@domain${i % D}.test`;
  const msg = await spool.open({
    id: `B${String(i).padStart(6, "0")}`,
    sender: "bench@example.test",
    recipients: [{ address: to, route: { local: [], remote: [to] } }],
    helo: "bench", peerAddress: "127.0.0.1", hostname: "bench.petrel.test", protocol: "ESMTPA", receivedAt: new Date(),
  });
  await msg.write([body]);
  await msg.commit();
}
const queueMs = performance.now() - t;
fs.writeFileSync(path.join(dir, "petrel.toml"), [
  'hostname = "bench.petrel.test"', 'domains = ["example.test"]', `data_dir = "${dataDir}"`,
  "[listen]", 'smtp = ["127.0.0.1:0"]', "submission = []", "submissions = []", "pop3 = []", "pop3s = []",
  "[delivery]", `smarthost = "127.0.0.1:${sinkPort}"`, 'smarthost_security = "none"',
  "[log]", 'level = "warn"', "",
].join("\n"));
t = performance.now();
const server = spawn(path.join(ROOT, "bin/petrel"), ["serve", "--config", path.join(dir, "petrel.toml")], { stdio: ["ignore", "ignore", "inherit"] });
const envelopes = path.join(dataDir, "queue", "envelopes");
for (;;) {
  await new Promise((r) => setTimeout(r, 100));
  if (fs.readdirSync(envelopes).length === 0) break;
  if (performance.now() - t > 600_000) throw new Error("queue not empty after 10 minutes");
}
const drainMs = performance.now() - t;
server.kill("SIGTERM");
await new Promise((r) => server.once("exit", r));
sink.kill("SIGTERM");
fs.rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ node: process.version, messages: N, domains: D, queued_in_s: +(queueMs / 1000).toFixed(1), drained_in_s: +(drainMs / 1000).toFixed(2), msgs_per_s: Math.round(N / (drainMs / 1000)) }));
