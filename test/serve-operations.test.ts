// How `petrel serve` behaves for the people and programs that run it (issue 7, item 11): signals reach
// the server through `npm start`; SIGHUP reloads and never kills; a log reader that stops reading
// neither freezes the server nor keeps it from exiting; a bad PETREL_LOG_LEVEL is one line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { PETREL_BIN, PROJECT_ROOT } from "./helpers/server.js";
import { runProgram } from "./helpers/run.js";
import { RawSmtp } from "./helpers/smtp-client.js";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function scratch(t: { after(fn: () => void): void }, smtpPort: number | string = 0): { dir: string; config: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-ops-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const config = path.join(dir, "petrel.toml");
  fs.writeFileSync(
    config,
    `hostname = "mx.petrel.test"\ndata_dir = "${dir}/data"\n[listen]\nsmtp = ["127.0.0.1:${smtpPort}"]\npop3 = []\nsubmission = []\nsubmissions = []\npop3s = []\n[dns]\nservers = ["127.0.0.1:53"]\n`,
  );
  return { dir, config };
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** One greeting and QUIT; fails (rather than hangs) when the server does not answer within 5 s. */
async function smtpGreets(port: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("no SMTP session within 5 s")), 5000)));
  const session = (async () => {
    const c = await RawSmtp.connect(port);
    const greeting = await c.reply(5000);
    c.write("QUIT\r\n");
    await c.reply(5000);
    return greeting.raw;
  })();
  try {
    return await Promise.race([session, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

test("SIGTERM to `npm start` stops the server itself: no node process is left holding the port", async (t) => {
  const port = await freePort();
  const { config } = scratch(t, port);
  const npm = spawn("npm", ["start", "--silent", "--", "--config", config], { cwd: PROJECT_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  npm.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  npm.stderr!.setEncoding("utf8").on("data", (d: string) => (out += d));
  t.after(() => npm.kill("SIGKILL"));
  await waitFor("petrel started", () => out.includes('"petrel started"'), 20_000);
  const serverPid = (JSON.parse(out.split("\n").find((l) => l.includes('"petrel started"'))!) as { pid: number }).pid;
  t.after(() => alive(serverPid) && process.kill(serverPid, "SIGKILL"));
  assert.notEqual(serverPid, npm.pid, "the server runs as its own process under npm");
  npm.kill("SIGTERM");
  await exited(npm);
  await waitFor("the server process to exit", () => !alive(serverPid), 10_000);
  assert.match(out, /"msg":"petrel stopped"/);
  // The port is free again.
  await new Promise<void>((resolve, reject) => {
    const s = net.createServer().once("error", reject);
    s.listen(port, "127.0.0.1", () => s.close(() => resolve()));
  });
});

test("SIGHUP reloads (a bad file is refused and logged) and never kills the server", async (t) => {
  const { config } = scratch(t);
  const child = spawn(PETREL_BIN, ["serve", "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
  t.after(() => child.kill("SIGKILL"));
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  await waitFor("petrel started", () => out.includes('"petrel started"'));
  const port = (JSON.parse(out.split("\n").find((l) => l.includes('"listening"'))!) as { port: number }).port;

  fs.appendFileSync(config, '[log]\nlevel = "debug"\n');
  child.kill("SIGHUP");
  await waitFor("reloaded", () => out.includes('"msg":"reloaded'));
  await smtpGreets(port);
  await waitFor("a debug line after the reload", () => out.includes('"msg":"connected"'));

  fs.appendFileSync(config, "nonsense = 1\n");
  child.kill("SIGHUP");
  await waitFor("reload refused", () => out.includes("reload refused"));
  assert.match(out, /unknown key log\.nonsense/);
  assert.match(await smtpGreets(port), /^220 mx\.petrel\.test ESMTP/);
  assert.equal(child.exitCode, null, "still running");

  child.kill("SIGTERM");
  assert.equal(await exited(child), 0);
});

test("a log reader that stops reading neither freezes the server nor keeps it from exiting", async (t) => {
  const port = await freePort();
  const { config } = scratch(t, port);
  // stdout is a pipe this test never reads: it fills after 64 KB.
  const child = spawn(PETREL_BIN, ["serve", "--config", config], {
    stdio: ["ignore", "pipe", "ignore"],
    env: { ...process.env, PETREL_LOG_LEVEL: "debug" },
  });
  t.after(() => child.kill("SIGKILL"));
  child.stdout!.pause();
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await smtpGreets(port);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error("server did not start");
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  // ~150 bytes of debug log per session: 1,000 sessions overflow the pipe many times over.
  const started = Date.now();
  for (let i = 0; i < 1000; i++) await smtpGreets(port);
  assert.ok(Date.now() - started < 30_000, "sessions kept being served");
  child.kill("SIGTERM");
  const t0 = Date.now();
  assert.equal(await exited(child), 0);
  assert.ok(Date.now() - t0 < 8000, `exit took ${Date.now() - t0} ms`);
});

test("PETREL_LOG_LEVEL with a bad value: one line, exit 1", async (t) => {
  const { config } = scratch(t);
  const r = await runProgram(PETREL_BIN, ["serve", "--config", config], { env: { ...process.env, PETREL_LOG_LEVEL: "verbose" } });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'petrel: PETREL_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent (got "verbose")\n');
});
