// Runs a program (never through a shell) with text on stdin and collects its output, for tests
// that drive real clients (python3, curl, swaks, fetchmail) or the petrel CLI.
import { spawn } from "node:child_process";

export interface ProgramRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly input?: string | Buffer;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Kills the program after this long (default 20 s). */
  readonly timeoutMs?: number;
  /** Runs the program as this user and group (the test process must be root). */
  readonly uid?: number;
  readonly gid?: number;
}

export function runProgram(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<ProgramRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, uid: opts.uid, gid: opts.gid, stdio: ["pipe", "pipe", "pipe"], timeout: opts.timeoutMs ?? 20_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
    // The program may exit before reading stdin; that is not an error here.
    child.stdin.on("error", () => undefined);
    child.stdin.end(opts.input ?? "");
  });
}
