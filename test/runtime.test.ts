// The runtime Petrel needs (issue 6): Node.js 22.19 or newer. The suite runs on such a Node, and an
// older one running bin/petrel gets one line naming the version needed and exit status 1.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { PETREL_BIN, PROJECT_ROOT } from "./helpers/server.js";

test("the tests run on Node 22.19 or newer, as package.json engines says", () => {
  const [major, minor] = process.versions.node.split(".").map(Number) as [number, number];
  assert.ok(major > 22 || (major === 22 && minor >= 19), `running on ${process.version}`);
  const pkg = JSON.parse(fs.readFileSync(`${PROJECT_ROOT}/package.json`, "utf8")) as { engines: { node: string } };
  assert.equal(pkg.engines.node, ">=22.19");
});

test("bin/petrel on an older Node prints one line and exits 1", (t) => {
  // Debian 12's own node (20.x) when it is installed; otherwise nothing older to try.
  const old = "/usr/bin/node";
  const version = fs.existsSync(old) ? spawnSync(old, ["--version"], { encoding: "utf8" }).stdout.trim() : "";
  const m = /^v(\d+)\.(\d+)/.exec(version);
  if (!m || Number(m[1]) > 22 || (Number(m[1]) === 22 && Number(m[2]) >= 19)) return t.skip(`no Node older than 22.19 at ${old}`);
  const r = spawnSync(old, [PETREL_BIN, "user", "list"], { encoding: "utf8" });
  assert.equal(r.status, 1);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr, `petrel: needs Node.js 22.19 or newer (24 LTS recommended); this is ${version}. scripts/ensure-node.sh installs Node 24.\n`);
});
