#!/usr/bin/env node
// What TLS costs Petrel: starts `petrel serve` on loopback with a fresh data_dir (self-signed
// certificate) and measures, from CONC concurrent clients, (1) new connections per second for plain
// SMTP (EHLO, QUIT), STARTTLS and implicit TLS with AUTH PLAIN, and (2) 1 KB messages per second over
// one reused connection per client, plain on 25 and authenticated over TLS on 465.
// Usage: node scripts/bench-tls.mjs [--seconds 5] [--conc 8]
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import { opt } from "./bench-options.mjs";

const SECONDS = opt("seconds", 5);
const CONC = opt("conc", 8);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(ROOT, "bin", "petrel");

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-bench-tls-"));
const config = path.join(dir, "petrel.toml");
fs.writeFileSync(
  config,
  [
    'hostname = "bench.petrel.test"',
    'domains = ["example.test"]',
    `data_dir = "${dir}/data"`,
    "[listen]",
    'smtp = ["127.0.0.1:0"]',
    'submission = []',
    'submissions = ["127.0.0.1:0"]',
    "pop3 = []",
    "pop3s = []",
    "[limits]",
    "max_connections = 1000",
    "max_junk_commands = 1000000",
    "[log]",
    'level = "warn"',
    // What TLS costs, not the inbound checks (their DNS lookups would time the plain-25 runs).
    "[auth]",
    "checks = false",
    "[spam]",
    "bayes = false",
    "",
  ].join("\n"),
);
fs.mkdirSync(path.join(dir, "data"), { mode: 0o700 });
const added = spawnSync(BIN, ["user", "add", "user@example.test", "--password-stdin", "--config", config], { input: "bench-pw\n", encoding: "utf8" });
if (added.status !== 0) throw new Error(`user add failed: ${added.stderr}`);
const server = spawn(BIN, ["serve", "--config", config], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, PETREL_LOG_LEVEL: "info" } });
let out = "";
server.stdout.setEncoding("utf8").on("data", (d) => (out += d));
const ports = {};
for (let i = 0; i < 200 && Object.keys(ports).length < 2; i++) {
  await new Promise((r) => setTimeout(r, 50));
  for (const l of out.split("\n")) if (l.includes('"msg":"listening"')) { const j = JSON.parse(l); ports[j.listener] = j.port; }
}

/** A line-based client over a socket: send a command, await a complete reply. */
function client(socket) {
  let buf = "";
  let waiter = null;
  const onData = (d) => { buf += d; waiter?.(); };
  socket.setEncoding("latin1");
  socket.on("data", onData);
  socket.on("error", () => undefined);
  const reply = async () => {
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3} [^\n]*\n/.exec(buf);
      if (m) { buf = buf.slice(m[0].length); return m[0]; }
      await new Promise((r) => (waiter = r));
    }
  };
  return { reply, send: (s) => socket.write(s), detach: () => socket.off("data", onData) };
}

const connectPlain = (port) => new Promise((resolve) => { const s = net.connect(port, "127.0.0.1", () => resolve(s)); });
const connectTls = (port) => new Promise((resolve) => { const s = tls.connect({ port, host: "127.0.0.1", rejectUnauthorized: false }, () => resolve(s)); });
const AUTH = `AUTH PLAIN ${Buffer.from("\0user@example.test\0bench-pw").toString("base64")}\r\n`;

async function session(kind) {
  if (kind === "plain") {
    const c = client(await connectPlain(ports.smtp));
    await c.reply(); c.send("EHLO b\r\n"); await c.reply(); return c;
  }
  if (kind === "starttls") {
    const raw = await connectPlain(ports.smtp);
    const c = client(raw);
    await c.reply(); c.send("EHLO b\r\n"); await c.reply(); c.send("STARTTLS\r\n"); await c.reply(); c.detach();
    const s = await new Promise((resolve) => { const t = tls.connect({ socket: raw, rejectUnauthorized: false }, () => resolve(t)); });
    const d = client(s);
    d.send("EHLO b\r\n"); await d.reply(); return d;
  }
  const c = client(await connectTls(ports.submissions));
  await c.reply(); c.send("EHLO b\r\n"); await c.reply(); c.send(AUTH); await c.reply(); return c;
}

async function run(label, worker) {
  const end = Date.now() + SECONDS * 1000;
  let n = 0;
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: CONC }, async (_, slot) => { while (Date.now() < end) { const done = await worker(slot); n += done; } }));
  const cpu = process.cpuUsage(cpu0);
  if (process.env.BENCH_DEBUG) console.log({ n, overrun_ms: Date.now() - end });
  console.log(`${label.padEnd(44)} ${(n / SECONDS).toFixed(0).padStart(6)} /s   (client CPU ${((cpu.user + cpu.system) / 1000 / SECONDS / 10).toFixed(0)} %)`);
}

const MSG = `Subject: bench\r\n\r\n${"x".repeat(76)}\r\n`.repeat(13) + ".\r\n";
async function messages(kind) {
  const c = await session(kind);
  const from = kind === "plain" ? "bench@client.test" : "user@example.test";
  return async () => {
    c.send(`MAIL FROM:<${from}>\r\nRCPT TO:<user@example.test>\r\nDATA\r\n`);
    await c.reply(); await c.reply(); await c.reply();
    c.send(MSG); await c.reply();
    return 1;
  };
}

console.log(`node ${process.version}, ${CONC} concurrent clients, ${SECONDS} s each, ${os.cpus().length} cores`);
for (const kind of (process.env.KINDS ?? "plain,starttls,implicit").split(",")) {
  await run(`new connections: ${kind === "plain" ? "plain EHLO/QUIT on 25" : kind === "starttls" ? "STARTTLS + EHLO on 25" : "TLS + EHLO + AUTH on 465"}`, async () => {
    const c = await session(kind); c.send("QUIT\r\n"); await c.reply(); return 1;
  });
}
for (const kind of (process.env.MSG_KINDS ?? "plain,implicit").split(",").filter(Boolean)) {
  const workers = await Promise.all(Array.from({ length: CONC }, () => messages(kind)));
  await run(`1 KB messages, reused connection: ${kind === "plain" ? "plain on 25" : "TLS + AUTH on 465"}`, (slot) => workers[slot]());
}
if (process.env.BENCH_DEBUG) { const c = {}; for (const l of out.split("\n")) { const m = /"msg":"([^"]+)"/.exec(l); if (m) c[m[1]] = (c[m[1]] ?? 0) + 1; } console.log(c); }
server.kill("SIGTERM");
await new Promise((r) => server.once("exit", r));
fs.rmSync(dir, { recursive: true, force: true });
