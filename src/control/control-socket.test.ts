// Unit tests of the control socket: a request reaches the handler and its answer comes back, bad
// requests are refused without reaching it, no server is "not-running", the socket file is private.
import { afterEach, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "../core/log.js";
import { ControlServer, controlRequest, controlSocketPath, parseControlRequest, type ControlRequest } from "./control-socket.js";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-ctl-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test("a flush request reaches the handler and its answer comes back; the socket is 0600 and removed at stop", async () => {
  const seen: ControlRequest[] = [];
  const server = new ControlServer(dir, async (req) => (seen.push(req), { ok: true, attempted: 3 }), silentLogger());
  fs.writeFileSync(controlSocketPath(dir), "stale");
  await server.start();
  assert.equal(fs.statSync(controlSocketPath(dir)).mode & 0o777, 0o600);
  assert.deepEqual(await controlRequest(dir, { cmd: "flush", domain: "Example.ORG" }), { ok: true, attempted: 3 });
  assert.deepEqual(await controlRequest(dir, { cmd: "pickup" }), { ok: true, attempted: 3 });
  assert.deepEqual(seen, [{ cmd: "flush", domain: "example.org" }, { cmd: "pickup" }]);
  await server.stop();
  assert.equal(fs.existsSync(controlSocketPath(dir)), false);
  assert.equal(await controlRequest(dir, { cmd: "ping" }), "not-running");
});

test("unknown or malformed requests are refused without reaching the handler; a failing handler answers ok:false", async () => {
  let calls = 0;
  const server = new ControlServer(dir, async () => (++calls, Promise.reject(new Error("disk on fire"))), silentLogger());
  await server.start();
  const raw = (line: string) =>
    new Promise<string>((resolve) => {
      const s = net.connect(controlSocketPath(dir));
      let out = "";
      s.on("data", (d) => (out += d));
      s.on("end", () => resolve(out));
      s.write(line);
    });
  assert.equal(await raw('{"cmd":"rm -rf"}\n'), '{"ok":false,"error":"unknown request"}\n');
  assert.equal(await raw("not json\n"), '{"ok":false,"error":"unknown request"}\n');
  assert.equal(await raw(`${"x".repeat(5000)}`), '{"ok":false,"error":"request too long"}\n');
  assert.equal(calls, 0);
  assert.deepEqual(await controlRequest(dir, { cmd: "ping" }), { ok: false, error: "disk on fire" });
  await server.stop();
});

test("parseControlRequest: domains are checked and lowercased", () => {
  assert.deepEqual(parseControlRequest('{"cmd":"flush"}'), { cmd: "flush" });
  assert.equal(parseControlRequest('{"cmd":"flush","domain":"a b"}'), null);
  assert.equal(parseControlRequest('{"cmd":"flush","domain":5}'), null);
  assert.equal(parseControlRequest("[]"), null);
  assert.deepEqual(parseControlRequest('{"cmd":"delete","id":"ABC123"}'), { cmd: "delete", id: "ABC123" });
  assert.equal(parseControlRequest('{"cmd":"delete","id":"../etc"}'), null);
  assert.deepEqual(parseControlRequest('{"cmd":"bounce","id":"ABC123"}'), { cmd: "bounce", id: "ABC123" });
  assert.equal(parseControlRequest('{"cmd":"bounce","id":"a b"}'), null);
});
