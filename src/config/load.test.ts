// Unit tests for finding and validating the config: the search order (--config, PETREL_CONFIG,
// ./petrel.toml, /etc/petrel/petrel.toml, defaults) and paths relative to the file.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { findConfig, loadConfig } from "./load.js";

function tempDir(t: { after(fn: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-config-"));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

test("search order: --config, PETREL_CONFIG, ./petrel.toml, the system file, defaults", (t) => {
  const d = tempDir(t);
  const cwd = path.join(d, "cwd");
  fs.mkdirSync(cwd);
  const system = path.join(d, "etc-petrel.toml");
  const none = { env: {}, cwd, systemPath: system };
  assert.deepEqual(findConfig(none), { source: null, origin: "defaults" });
  fs.writeFileSync(system, "");
  assert.deepEqual(findConfig(none), { source: system, origin: "system" });
  fs.writeFileSync(path.join(cwd, "petrel.toml"), "");
  assert.deepEqual(findConfig(none), { source: path.join(cwd, "petrel.toml"), origin: "cwd" });
  assert.deepEqual(findConfig({ ...none, env: { PETREL_CONFIG: "../x.toml" } }), { source: path.join(d, "x.toml"), origin: "env" });
  assert.deepEqual(findConfig({ ...none, env: { PETREL_CONFIG: "" } }).origin, "cwd", "an empty PETREL_CONFIG is unset");
  assert.deepEqual(findConfig({ ...none, env: { PETREL_CONFIG: "/e.toml" }, flag: "f.toml" }), { source: path.join(cwd, "f.toml"), origin: "flag" });
});

test("data_dir and tls files are taken from the config file's folder", (t) => {
  const d = tempDir(t);
  fs.writeFileSync(path.join(d, "c.pem"), "x");
  fs.writeFileSync(path.join(d, "k.pem"), "x");
  const file = path.join(d, "petrel.toml");
  fs.writeFileSync(file, 'data_dir = "d"\n[tls]\ncert = "c.pem"\nkey = "k.pem"\n');
  const c = loadConfig({ flag: file });
  assert.equal(c.data_dir, path.join(d, "d"));
  assert.deepEqual(c.tls, { cert: path.join(d, "c.pem"), key: path.join(d, "k.pem") });
  assert.equal(c.origin, "flag");
});

test("[auth] trusted_networks: empty by default; addresses and CIDR networks; anything else refused naming the key", (t) => {
  const d = tempDir(t);
  const file = path.join(d, "petrel.toml");
  fs.writeFileSync(file, "");
  assert.deepEqual(loadConfig({ flag: file }).auth.trusted_networks, []);
  fs.writeFileSync(file, '[auth]\ntrusted_networks = ["192.0.2.7", "10.0.0.0/8", "2001:db8::/32"]\n');
  assert.deepEqual(loadConfig({ flag: file }).auth.trusted_networks, ["192.0.2.7", "10.0.0.0/8", "2001:db8::/32"]);
  fs.writeFileSync(file, '[auth]\ntrusted_networks = ["10.0.0.0/33"]\n');
  assert.throws(() => loadConfig({ flag: file }), /auth\.trusted_networks/);
});
