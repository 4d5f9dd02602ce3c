// Wrappers for the real clients the TLS/AUTH interop tests drive (RFC 3207 STARTTLS, RFC 8314
// implicit TLS, RFC 2595 STLS): swaks, msmtp, curl, fetchmail, openssl s_client and python3. Each
// runs the tool with a timeout, trusts nothing but its exit status and output, and never reads the
// user's own config (~/.msmtprc, ~/.fetchmailrc, ~/.curlrc); certificate checks are off, because the
// test server's certificate is self-signed.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ProgramRun } from "./run.js";
import { runTool } from "./tools.js";

/** swaks with `args` as given (e.g. `--server 127.0.0.1:PORT --tls --auth PLAIN ...`). */
export function swaks(args: readonly string[]): Promise<ProgramRun> {
  return runTool("swaks", args);
}

export interface MsmtpOptions {
  /** Passed to msmtp through a 0600 file and `--passwordeval` (msmtp has no password option). */
  readonly password?: string;
}

/**
 * msmtp with no config file: everything comes from `args` (`--host`, `--port`, `--tls=on`,
 * `--tls-starttls=off` for implicit TLS, `--auth=on`, `--user`, `--from`, recipients); the message is
 * `stdin`. Adds `--tls-certcheck=off` (self-signed certificate). Exit 0 means the server took it.
 */
export async function msmtp(args: readonly string[], stdin: string, opts: MsmtpOptions = {}): Promise<ProgramRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-msmtp-"));
  try {
    const extra: string[] = [];
    if (opts.password !== undefined) {
      const file = path.join(dir, "password");
      fs.writeFileSync(file, opts.password, { mode: 0o600 });
      extra.push(`--passwordeval=cat ${file}`);
    }
    // -C /dev/null: an empty user config, so a developer's ~/.msmtprc cannot change the test.
    return await runTool("msmtp", ["-C", "/dev/null", "--tls-certcheck=off", ...extra, ...args], { input: stdin });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** curl without ~/.curlrc or proxies, `-k` for the self-signed certificate, 15 s at most. */
export function curl(args: readonly string[], stdin?: string): Promise<ProgramRun> {
  return runTool("curl", ["-q", "-sS", "-k", "--noproxy", "*", "--max-time", "15", ...args], stdin === undefined ? {} : { input: stdin });
}

export interface FetchmailOptions {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Leave the messages on the server (default false: fetchmail deletes what it fetched). */
  readonly keep?: boolean;
  /**
   * Extra words for the rc file's `options` clause. fetchmail 6.4 uses STLS whenever the server
   * offers it and checks the certificate: `no sslcertck` accepts the self-signed one; `sslproto ''`
   * talks plain POP3; `ssl` is implicit TLS (POP3S).
   */
  readonly options?: string;
}

export interface FetchmailRun extends ProgramRun {
  /** Each message the MDA received, in delivery order. */
  readonly messages: string[];
}

/**
 * Runs fetchmail once from a temporary 0600 rc file (fetchmail refuses a wider one) with its own
 * HOME, delivering every message through an MDA into its own file.
 */
export async function fetchmail(opts: FetchmailOptions): Promise<FetchmailRun> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-fetchmail-"));
  try {
    const outDir = path.join(home, "out");
    fs.mkdirSync(outDir);
    const rc = path.join(home, "fetchmailrc");
    fs.writeFileSync(
      rc,
      [
        `poll 127.0.0.1 service ${opts.port} protocol POP3 auth password`,
        `  user "${opts.user}" there with password "${opts.password}" is "localuser" here`,
        `  options fetchall ${opts.keep ? "keep" : "nokeep"} norewrite ${opts.options ?? ""}`,
        // Files named 0, 1, 2 … in delivery order (mtimes can tie; fetchmail expands % in an MDA).
        `  mda "cat > ${outDir}/$(ls ${outDir} | wc -l)"`,
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    const r = await runTool(
      "fetchmail",
      ["--nosyslog", "-f", rc, "-i", path.join(home, "ids"), "--pidfile", path.join(home, "pid")],
      { env: { HOME: home, FETCHMAILHOME: home }, timeoutMs: 30_000 },
    );
    const files = fs.readdirSync(outDir).sort((a, b) => Number(a) - Number(b));
    return { ...r, messages: files.map((f) => fs.readFileSync(path.join(outDir, f), "latin1")) };
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}

export interface SClientOptions {
  readonly port: number;
  /** STARTTLS (RFC 3207) or STLS (RFC 2595) first; without it the connection is TLS from the start. */
  readonly starttls?: "smtp" | "pop3";
  /** SNI name (default none). */
  readonly servername?: string;
  /** Forces one version, e.g. "-tls1_1" to check that it is refused. */
  readonly versionFlag?: "-tls1" | "-tls1_1" | "-tls1_2" | "-tls1_3";
  /** Sent after the handshake (default "QUIT\r\n"); s_client closes at the end of its stdin. */
  readonly input?: string;
}

export interface SClientRun extends ProgramRun {
  /** The certificates the server sent (PEM, leaf first); empty when no handshake completed. */
  readonly certificates: string[];
  /** "TLSv1.2", "TLSv1.3", … as negotiated; undefined without a handshake. */
  readonly protocol: string | undefined;
  readonly cipher: string | undefined;
}

/** `openssl s_client -showcerts` against 127.0.0.1:port; parses the chain, protocol and cipher. */
export async function opensslClient(opts: SClientOptions): Promise<SClientRun> {
  const args = ["s_client", "-connect", `127.0.0.1:${opts.port}`, "-showcerts", "-crlf"];
  if (opts.starttls) args.push("-starttls", opts.starttls);
  args.push(...(opts.servername ? ["-servername", opts.servername] : ["-noservername"]));
  if (opts.versionFlag) args.push(opts.versionFlag);
  const r = await runTool("openssl", args, { input: opts.input ?? "QUIT\n" });
  const certificates = r.stdout.match(/-----BEGIN CERTIFICATE-----\n[\s\S]*?\n-----END CERTIFICATE-----\n/g) ?? [];
  // "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384"; "New, (NONE), Cipher is (NONE)" when it failed.
  const m = /^New, (TLSv[\d.]+), Cipher is (\S+)$/m.exec(r.stdout);
  return { ...r, certificates, protocol: m?.[1], cipher: m?.[2] };
}

/** Before every Python script: the modules, and `ctx`, an SSL context that accepts the self-signed certificate. */
const PYTHON_PRELUDE = `import json, ssl, sys, smtplib, poplib
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
port = int(sys.argv[1])
`;

/** connect(mode) in SMTP scripts: "plain", "starttls" (EHLO, STARTTLS, RFC 3207) or "ssl" (port 465 style, RFC 8314). */
const SMTP_CONNECT = `def connect(mode="plain"):
    if mode == "ssl":
        return smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=15)
    s = smtplib.SMTP("127.0.0.1", port, timeout=15)
    if mode == "starttls":
        s.starttls(context=ctx)
    return s
`;

/** connect(mode) in POP3 scripts: "plain", "stls" (RFC 2595) or "ssl" (POP3S). */
const POP_CONNECT = `def connect(mode="plain"):
    if mode == "ssl":
        return poplib.POP3_SSL("127.0.0.1", port, context=ctx, timeout=15)
    p = poplib.POP3("127.0.0.1", port, timeout=15)
    if mode == "stls":
        p.stls(context=ctx)
    return p
`;

/** Runs python3 -c (prelude + script) with argv[1] = port; the script prints one JSON document on its last line. */
async function python<T>(prelude: string, port: number, script: string, args: readonly (string | number)[]): Promise<T> {
  const r = await runTool("python3", ["-c", PYTHON_PRELUDE + prelude + script, String(port), ...args.map(String)]);
  if (r.status !== 0) throw new Error(`python3 exited ${r.status}:\n${r.stderr}${r.stdout}`);
  const last = r.stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(last) as T;
}

/**
 * An smtplib script against 127.0.0.1:port. It has json, ssl, sys, smtplib, `ctx` (no certificate
 * checks), `port` and `connect(mode)` ("plain" | "starttls" | "ssl"); extra args are sys.argv[2:].
 * Returns the JSON the script prints last; throws with its output when python3 fails.
 */
export function pythonSmtp<T>(port: number, script: string, ...args: readonly (string | number)[]): Promise<T> {
  return python<T>(SMTP_CONNECT, port, script, args);
}

/** The same for poplib: `connect(mode)` with "plain" | "stls" | "ssl". */
export function pythonPop<T>(port: number, script: string, ...args: readonly (string | number)[]): Promise<T> {
  return python<T>(POP_CONNECT, port, script, args);
}
