#!/usr/bin/env node
// kill -9 soak (issue 7): N clients send numbered messages (to a user and to a 3-member list) while
// `petrel serve` is SIGKILLed at random moments and restarted. Clients retry only messages that did
// not get 250. At the end the server is restarted once more (recovery), then every copy is
// reconciled: each 250'd message exactly once per recipient, no partial or corrupt file, nothing left
// in tmp/, queue/tmp or the journal. Prints one summary line; exit status 1 on any violation.
// A duplicate after a 250 fails at once. A duplicate after an attempt that got no reply can only come
// from a kill in the µs between the ack syscall and the 250's write (RFC 1047): counted apart as
// window_duplicates and allowed up to --max-window-duplicates (default: one per 20 kills, at least 1;
// the code before this rule hit one per two kills). SOAK_DEBUG=1 lists them, keeps the data and the
// server's info log.
// Usage: node scripts/soak-kill9.mjs [--seconds 60] [--clients 4] [--max-window-duplicates N]   (needs `npm run build` first)
import { spawn, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(ROOT, "bin", "petrel");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const SECONDS = arg("seconds", 60);
const CLIENTS = arg("clients", 4);
const MEMBERS = ["t1@localhost", "t2@localhost", "t3@localhost"];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-soak-"));
const dataDir = path.join(dir, "data");
const config = path.join(dir, "petrel.toml");
const port = await freePort();
fs.writeFileSync(
  config,
  [`hostname = "soak.petrel.test"`, `domains = ["localhost"]`, `data_dir = "${dataDir}"`, "[listen]", `smtp = ["127.0.0.1:${port}"]`,
    "submission = []", "submissions = []", "pop3 = []", "pop3s = []", "[log]", 'level = "warn"', ""].join("\n"),
);
const users = [...MEMBERS, ...Array.from({ length: CLIENTS }, (_, i) => `c${i}@localhost`)];
for (const u of users) cli(["user", "add", u, "--password-stdin"], "pw\n");
cli(["list", "add", "team@localhost", ...MEMBERS]);

let server = null;
let kills = 0;
const started = Date.now();
await startServer();

/** id → { rcpt, got250, ambiguous } */
const messages = new Map();
let attempts = 0, noReply = 0, tempFails = 0;
let sending = true;
const clients = Array.from({ length: CLIENTS }, (_, i) => client(i));
while (Date.now() - started < SECONDS * 1000) {
  await sleep(300 + Math.random() * 1700);
  if (Date.now() - started >= SECONDS * 1000) break;
  server.kill("SIGKILL");
  await new Promise((r) => (server.exitCode !== null || server.signalCode !== null ? r() : server.once("exit", r)));
  kills++;
  await startServer();
}
sending = false;
await Promise.all(clients);
await stopServer();
await startServer(); // the last restart's recovery
await stopServer();
const report = reconcile();
const secs = ((Date.now() - started) / 1000).toFixed(1);
// The RFC 1047 window: a kill after the ack syscall and before the 250's write (the same turn of
// the event loop, a few µs) leaves a delivered message whose client retries. Before the ack moved
// next to the 250 this hit about one kill in two (21 of 43); now about one in fifty. Anything else
// (lost, partial, corrupt, a duplicate after a 250) fails at once.
const windowLimit = arg("max-window-duplicates", Math.max(1, Math.floor(kills / 20)));
const ok = report.windowDup <= windowLimit && report.lost === 0 && report.partial === 0 && report.corrupt === 0 && report.unexplainedDup === 0 && report.leftovers === 0;
console.log(
  `soak: ${ok ? "PASS" : "FAIL"} ${secs}s clients=${CLIENTS} kills=${kills} messages=${messages.size} accepted=${report.accepted} ` +
    `attempts=${attempts} no_reply=${noReply} tempfail=${tempFails} copies=${report.copies} lost=${report.lost} partial=${report.partial} ` +
    `corrupt=${report.corrupt} duplicates=${report.unexplainedDup} window_duplicates=${report.windowDup} window_limit=${windowLimit} leftovers=${report.leftovers}`,
);
if (ok) fs.rmSync(dir, { recursive: true, force: true });
else console.log(`soak: data kept in ${dir}`);
process.exit(ok ? 0 : 1);

// ---- helpers ----

function cli(args, input = "") {
  const r = spawnSync(BIN, [...args, "--config", config], { input, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`petrel ${args.join(" ")}: ${r.stderr}`);
}

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const p = s.address().port;
  await new Promise((r) => s.close(r));
  return p;
}

async function startServer() {
  for (let tries = 0; ; tries++) {
    const out = process.env.SOAK_DEBUG ? fs.openSync(path.join(dir, "server.log"), "a") : "ignore";
    const child = spawn(BIN, ["serve", "--config", config], { stdio: ["ignore", out, "pipe"], env: { ...process.env, PETREL_LOG_LEVEL: process.env.SOAK_DEBUG ? "info" : "warn" } });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    const up = await waitListening(child);
    if (up) {
      server = child;
      return;
    }
    if (tries > 20) throw new Error(`petrel serve does not start: ${err}`);
    await sleep(100);
  }
}

async function waitListening(child) {
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false;
    const ok = await new Promise((r) => {
      const s = net.connect(port, "127.0.0.1", () => (s.destroy(), r(true)));
      s.on("error", () => r(false));
    });
    if (ok) return true;
    await sleep(30);
  }
  return false;
}

async function stopServer() {
  if (server.exitCode === null && server.signalCode === null) {
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
  }
}

/** The content of message `id`: deterministic, some large enough to be cut mid-write. */
function body(id) {
  const h = crypto.createHash("sha256").update(id).digest("hex");
  const lines = 5 + (parseInt(h.slice(0, 4), 16) % 3000);
  let text = `From: soak@client.test\r\nX-Soak-Id: ${id}\r\nSubject: soak ${id}\r\n\r\n`;
  for (let i = 0; i < lines; i++) text += `${id} line ${i} ${h}\r\n`;
  return text;
}

async function client(i) {
  for (let k = 0; sending; k++) {
    const id = `c${i}-${k}`;
    const rcpt = k % 2 === 0 ? `c${i}@localhost` : "team@localhost";
    const m = { rcpt, got250: false, ambiguous: false };
    messages.set(id, m);
    while (!m.got250) {
      attempts++;
      const r = await sendOnce(rcpt, body(id));
      if (r === "250") m.got250 = true;
      else if (r === "no-reply") {
        m.ambiguous = true;
        noReply++;
        await sleep(50);
      } else {
        tempFails++;
        await sleep(50);
      }
    }
  }
}

/** One SMTP transaction: "250", "no-reply" (connection lost after the content was sent) or "failed". */
function sendOnce(rcpt, content) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    let buf = "", step = 0, dataSent = false, done = false;
    const finish = (r) => {
      if (done) return;
      done = true;
      s.destroy();
      resolve(r);
    };
    const script = ["EHLO soak.client", "MAIL FROM:<soak@client.test>", `RCPT TO:<${rcpt}>`, "DATA"];
    s.setTimeout(20000, () => finish(dataSent ? "no-reply" : "failed"));
    s.on("error", () => finish(dataSent ? "no-reply" : "failed"));
    s.on("close", () => finish(dataSent ? "no-reply" : "failed"));
    s.on("data", (d) => {
      buf += d.toString("latin1");
      for (;;) {
        const m = /^(\d{3})([ -])[^\n]*\n/.exec(buf);
        if (!m) return;
        buf = buf.slice(m[0].length);
        if (m[2] === "-") continue;
        const code = Number(m[1]);
        if (step === 0 && code === 220) s.write(script[step++] + "\r\n");
        else if (step >= 1 && step <= 3 && code === 250) s.write(script[step++] + "\r\n");
        else if (step === 4 && code === 354) {
          step++;
          dataSent = true;
          s.write(content.replace(/^\./gm, "..") + ".\r\n");
        } else if (step === 5) {
          s.write("QUIT\r\n");
          return finish(code === 250 ? "250" : "failed");
        } else return finish("failed");
      }
    });
  });
}

function reconcile() {
  const counts = new Map(); // `${rcpt} ${id}` → copies
  let corrupt = 0, copies = 0, leftovers = 0;
  const boxes = path.join(dataDir, "mailboxes", "localhost");
  for (const user of fs.readdirSync(boxes)) {
    for (const sub of ["new", "cur"]) {
      const d = path.join(boxes, user, sub);
      if (!fs.existsSync(d)) continue;
      for (const f of fs.readdirSync(d)) {
        const text = fs.readFileSync(path.join(d, f), "latin1");
        const id = /\nX-Soak-Id: (\S+)\n/.exec(text)?.[1];
        copies++;
        const expected = id && body(id).replace(/\r\n/g, "\n");
        const size = Number(/,S=(\d+)/.exec(f)?.[1]);
        if (!id || !text.endsWith(expected) || size !== Buffer.byteLength(text, "latin1")) {
          corrupt++;
          continue;
        }
        const key = `${user}@localhost ${id}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    leftovers += fs.existsSync(path.join(boxes, user, "tmp")) ? fs.readdirSync(path.join(boxes, user, "tmp")).length : 0;
  }
  for (const sub of ["queue/tmp", "spool/journal"]) {
    const d = path.join(dataDir, sub);
    if (fs.existsSync(d)) leftovers += fs.readdirSync(d).length;
  }
  let accepted = 0, lost = 0, partial = 0, windowDup = 0, unexplainedDup = 0;
  for (const [id, m] of messages) {
    const rcpts = m.rcpt === "team@localhost" ? MEMBERS : [m.rcpt];
    const n = rcpts.map((r) => counts.get(`${r} ${id}`) ?? 0);
    if (m.got250) accepted++;
    if (new Set(n).size > 1) partial++;
    else if (m.got250 && n[0] === 0) lost++;
    else if (n[0] > 1) {
      // A retry after an attempt that got no reply: a kill between the ack and the 250's write.
      if (m.ambiguous) windowDup++;
      else unexplainedDup++;
      if (process.env.SOAK_DEBUG) console.log(`duplicate ${id} -> ${rcpts.join(",")} copies ${n.join(",")}`);
    }
  }
  return { accepted, copies, lost, partial, corrupt, windowDup, unexplainedDup, leftovers };
}
