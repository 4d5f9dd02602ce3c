// A real rspamd (Debian package) for tests, on a loopback port, with a minimal config in a temp folder:
// one normal worker, no Redis, no Lua rules (the C core still catches GTUBE, which is what tests score),
// DNS pointed at a closed loopback port (nothing leaves the machine), a four-line TLD list so start-up does
// not compile the public-suffix list (measured: ~10 s cold with it, ~1.3 s without). Stopped by its handle.
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export interface RspamdServer {
  /** "http://127.0.0.1:PORT" */
  readonly url: string;
  readonly port: number;
  /** Milliseconds from spawn to the first "pong". */
  readonly startupMs: number;
  /** Stops rspamd (SIGTERM to the main process, which ends its workers) and removes its folder. */
  stop(): Promise<void>;
}

export const RSPAMD_BIN = "/usr/bin/rspamd";

export function rspamdInstalled(): boolean {
  return fs.existsSync(RSPAMD_BIN);
}

export async function startRspamd(): Promise<RspamdServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-rspamd-"));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, "tld.dat"), "com\norg\nnet\ntest\n");
  fs.writeFileSync(
    path.join(dir, "rspamd.conf"),
    `options {
  pidfile = "${dir}/rspamd.pid";
  dbdir = "${dir}";
  hs_cache_dir = "${dir}";
  url_tld = "${dir}/tld.dat";
  dns { nameserver = ["127.0.0.1:9"]; timeout = 1s; retransmits = 1; }
}
logging { type = "console"; level = "error"; }
actions { reject = 15; add_header = 6; greylist = 4; }
worker "normal" {
  bind_socket = "127.0.0.1:${port}";
  count = 1;
}
`,
  );
  // As root (CI containers) rspamd wants the user named explicitly; otherwise it runs as the caller.
  const asRoot = process.getuid?.() === 0 ? ["-u", "root", "-g", "root"] : [];
  const started = Date.now();
  const child = spawn(RSPAMD_BIN, ["-f", ...asRoot, "-c", path.join(dir, "rspamd.conf")], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (out += d));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  while (!(await ping(url))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`rspamd did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { url, port, startupMs: Date.now() - started, stop };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function ping(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/ping`, { agent: false, timeout: 500 }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d: string) => (body += d));
      res.on("end", () => resolve(res.statusCode === 200 && body.trim() === "pong"));
      res.on("error", () => resolve(false));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
  });
}
