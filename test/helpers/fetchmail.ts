// Runs fetchmail once against a test server's POP3 port, delivering every message to its own file
// through an MDA, with its own HOME so nothing outside the test folder is read or written.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

export interface FetchResult {
  readonly status: number | null;
  readonly output: string;
  /** Each message the MDA received, in order. */
  readonly messages: string[];
}

export interface FetchOptions {
  /** Leave the messages on the server. */
  readonly keep: boolean;
  /** More words for the rc file's `options` line (e.g. "no sslcertck", "sslproto ''"). */
  readonly options?: string;
  /** -v: the POP3 dialogue goes into output. */
  readonly verbose?: boolean;
}

/** Polls 127.0.0.1:port once as user; the rc file is written under dir (mode 0600, as fetchmail wants). */
export function fetchmail(dir: string, port: number, user: string, password: string, opts: FetchOptions): FetchResult {
  const home = fs.mkdtempSync(path.join(dir, "fetchmail-"));
  const outDir = path.join(home, "out");
  fs.mkdirSync(outDir);
  const rc = path.join(home, "fetchmailrc");
  fs.writeFileSync(
    rc,
    [
      `poll 127.0.0.1 service ${port} protocol POP3 auth password`,
      `  user "${user}" there with password "${password}" is "localuser" here`,
      `  options fetchall ${opts.keep ? "keep" : "nokeep"} norewrite ${opts.options ?? ""}`,
      `  mda "cat > $(mktemp ${outDir}/msg.XXXXXX)"`,
      "",
    ].join("\n"),
  );
  fs.chmodSync(rc, 0o600);
  const args = [...(opts.verbose ? ["-v"] : []), "--nosyslog", "-f", rc, "-i", path.join(home, "ids"), "--pidfile", path.join(home, "pid")];
  const r = spawnSync("fetchmail", args, { encoding: "utf8", env: { ...process.env, HOME: home, FETCHMAILHOME: home }, timeout: 30_000 });
  const files = fs.readdirSync(outDir).map((f) => path.join(outDir, f));
  files.sort((a, b) => fs.statSync(a).mtimeMs - fs.statSync(b).mtimeMs);
  return { status: r.status, output: r.stdout + r.stderr, messages: files.map((f) => fs.readFileSync(f, "latin1")) };
}
