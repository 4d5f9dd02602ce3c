// Starts the real `bin/petrel serve` as a child process on random loopback ports (port 0) with a
// fresh data_dir, for end-to-end tests. Ports are read from the server's "listening" log lines.
// DNS points at loopback; nothing a test starts talks to anything outside 127.0.0.0/8.
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const PETREL_BIN = path.join(PROJECT_ROOT, "bin", "petrel");

export interface StartOptions {
  /** Extra TOML appended to the test config (may add sections like [limits] or [smtp]). */
  readonly toml?: string;
  /** Users created before start: [address, password, display name?]. */
  readonly users?: readonly (readonly [string, string, string?])[];
  readonly domains?: readonly string[];
  readonly hostname?: string;
  /** Runs the server under `ulimit -n <n>` (a child shell that execs it), for open-file limit tests. */
  readonly openFileLimit?: number;
  /** Environment for the server process (added to this process's), e.g. PETREL_FAULT. */
  readonly env?: NodeJS.ProcessEnv;
  /** Run the inbound checks (auth, Bayes) as a real server does; off by default (see withoutChecks). */
  readonly checks?: boolean;
  /** The [dns] servers entry (default "127.0.0.1:53"): a loopback DNS server of the test. */
  readonly dns?: string;
  /** Also start these listeners on random ports (they are off by default in tests). */
  readonly listeners?: readonly ("submission" | "submissions" | "pop3s")[];
  /** Use this existing folder (a restart: its petrel.toml is kept if present) instead of a new one. */
  readonly dir?: string;
  /** stop() leaves the folder in place (for a restart, or a mount the test removes itself). */
  readonly keepDir?: boolean;
  /** A shell prefix for the server command, e.g. "ulimit -n 128;" (runs through /bin/sh). */
  readonly shellPrefix?: string;
}

export interface TestServer {
  readonly dir: string;
  readonly dataDir: string;
  readonly configPath: string;
  readonly smtpPort: number;
  /** Undefined until the POP3 server exists. */
  readonly pop3Port: number | undefined;
  /** The port a listener bound (smtp, submission, submissions, pop3, pop3s); throws when it did not start. */
  port(listener: string): number;
  readonly process: ChildProcess;
  /** Everything the server printed so far. */
  logs(): string;
  /** Parsed JSON log lines. */
  logLines(): Record<string, unknown>[];
  /** Waits (default 5 s) for a log line that matches; returns it, or throws with the logs. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Runs `petrel <args> --config <this config>` synchronously. */
  petrel(args: readonly string[], input?: string): SpawnSyncReturns<string>;
  /** Files in the Maildir new/ (and cur/) folder of a local address, sorted by name. */
  mailbox(address: string): string[];
  /** Sends a signal and waits for exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * The inbound checks (SPF/DKIM/DMARC/ARC, Bayes) are off unless a test asks for them: they add header
 * fields to every stored copy, and most tests compare stored bytes. Keys go into the test's own
 * [auth] / [spam] tables when it has them.
 */
function withoutChecks(toml: string): string {
  const set = (t: string, table: string, line: string) => (t.includes(`[${table}]`) ? t.replace(`[${table}]`, `[${table}]\n${line}`) : `${t}\n[${table}]\n${line}\n`);
  return set(set(toml, "auth", "checks = false"), "spam", "bayes = false");
}

export async function startTestServer(opts: StartOptions = {}): Promise<TestServer> {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "petrel-test-"));
  const dataDir = path.join(dir, "data");
  const configPath = path.join(dir, "petrel.toml");
  const domains = opts.domains ?? ["localhost", "example.test"];
  if (!fs.existsSync(configPath)) fs.writeFileSync(
    configPath,
    [
      `hostname = "${opts.hostname ?? "mx.petrel.test"}"`,
      `domains = [${domains.map((d) => JSON.stringify(d)).join(", ")}]`,
      `data_dir = "${dataDir}"`,
      "[listen]",
      'smtp = ["127.0.0.1:0"]',
      `submission = [${opts.listeners?.includes("submission") ? '"127.0.0.1:0"' : ""}]`,
      `submissions = [${opts.listeners?.includes("submissions") ? '"127.0.0.1:0"' : ""}]`,
      'pop3 = ["127.0.0.1:0"]',
      `pop3s = [${opts.listeners?.includes("pop3s") ? '"127.0.0.1:0"' : ""}]`,
      "[dns]",
      `servers = [${JSON.stringify(opts.dns ?? "127.0.0.1:53")}]`,
      opts.checks ? (opts.toml ?? "") : withoutChecks(opts.toml ?? ""),
      "",
    ].join("\n"),
  );
  const petrel = (args: readonly string[], input?: string) =>
    spawnSync(PETREL_BIN, [...args, "--config", configPath], { input: input ?? "", encoding: "utf8" });
  for (const [address, password, name] of opts.users ?? []) {
    const r = petrel(["user", "add", address, "--password-stdin", ...(name ? ["--name", name] : [])], password + "\n");
    if (r.status !== 0) throw new Error(`user add ${address} failed: ${r.stderr}`);
  }
  const env = { ...process.env, ...opts.env };
  const prefix = `${opts.openFileLimit === undefined ? "" : `ulimit -n ${opts.openFileLimit} || exit 1;`} ${opts.shellPrefix ?? ""}`.trim();
  const child = prefix
    ? spawn("/bin/sh", ["-c", `${prefix} exec "$0" serve --config "$1"`, PETREL_BIN, configPath], { stdio: ["ignore", "pipe", "pipe"], env })
    : spawn(PETREL_BIN, ["serve", "--config", configPath], { stdio: ["ignore", "pipe", "pipe"], env });
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const lines = () =>
    out
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const deadline = Date.now() + 15000;
  while (!lines().some((l) => l.msg === "petrel started")) {
    if (child.exitCode !== null) throw new Error(`petrel serve exited early:\n${out}`);
    if (Date.now() > deadline) throw new Error(`petrel serve did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const port = (name: string) => lines().find((l) => l.msg === "listening" && l.listener === name)?.port as number | undefined;
  const smtpPort = port("smtp");
  if (!smtpPort) throw new Error(`no smtp port in logs:\n${out}`);
  return {
    dir,
    dataDir,
    configPath,
    smtpPort,
    pop3Port: port("pop3"),
    port(listener: string) {
      const p = port(listener);
      if (!p) throw new Error(`listener ${listener} did not start`);
      return p;
    },
    process: child,
    logs: () => out,
    logLines: lines,
    async waitForLog(match, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = lines().find(match);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`expected log line not seen:\n${out}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    petrel,
    mailbox(address: string) {
      const [local, domain] = address.toLowerCase().split("@");
      const root = path.join(dataDir, "mailboxes", domain!, local!);
      const files: string[] = [];
      for (const sub of ["new", "cur"]) {
        const d = path.join(root, sub);
        if (fs.existsSync(d)) files.push(...fs.readdirSync(d).map((f) => path.join(d, f)));
      }
      return files.sort();
    },
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const code = await exited;
      if (!opts.keepDir) fs.rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}
