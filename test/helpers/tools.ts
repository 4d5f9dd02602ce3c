// Finds the external tools integration tests drive (swaks, curl, fetchmail, python3). Absent on a
// developer's machine, a test skips and says so; under CI (CI=true), where .ci/run installed them,
// an absent tool is a failure instead. runTool runs one in a UTF-8 locale.
import { spawnSync } from "node:child_process";
import type { TestContext } from "node:test";
import { runProgram, type ProgramRun, type RunOptions } from "./run.js";

export function hasTool(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).status === 0;
}

/** Returns true when the tool is there; otherwise skips the test (or fails it under CI). */
export function requireTool(t: TestContext, name: string): boolean {
  if (hasTool(name)) return true;
  if (process.env.CI) throw new Error(`${name} is not installed, but CI must run this test (.ci/run installs it)`);
  t.skip(`${name} is not installed (apt-get install ${name})`);
  return false;
}

/** Runs a client program (no shell) in a UTF-8 locale; opts.env is added to this process's environment. */
export function runTool(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<ProgramRun> {
  return runProgram(cmd, args, { ...opts, env: { ...process.env, LC_ALL: "C.UTF-8", PYTHONIOENCODING: "utf-8", ...opts.env } });
}
