// Runs every compiled test file (dist/**/*.test.js) with node's built-in test runner.
// `npm test` compiles first (pretest). Extra arguments filter files by substring: npm test -- smtp
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = find("dist").filter((f) => filters.length === 0 || filters.some((x) => f.includes(x))).sort();
if (files.length === 0) {
  console.error("no test files found");
  process.exit(1);
}
console.log(`# node ${process.version} (${process.execPath})`);
const r = spawnSync(process.execPath, ["--test", "--test-reporter=spec", "--test-concurrency=2", "--test-timeout=120000", ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);
