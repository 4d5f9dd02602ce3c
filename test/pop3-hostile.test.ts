// Hostile POP3 clients against the real server (issue 7): CAPA or LIST nonstop from clients that
// never read (memory stays bounded by backpressure), the per-session command allowance, LIST/UIDL
// of a 20,000-message maildrop streamed, and [IN-USE] logged with its user.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { RawPop3 } from "./helpers/pop3-client.js";
import { MB, flood, repeated, rssBytes } from "./helpers/hostile.js";
import { eventually } from "./smtp-protocol-helpers.js";

const USERS = [["alice@localhost", "pw"]] as const;
const LOGIN = "USER alice@localhost\r\nPASS pw\r\n";

/** Puts n small messages straight into alice's Maildir new/ (names carry ,S= and ,W= like Petrel's). */
function fillMaildrop(server: TestServer, n: number): void {
  const root = path.join(server.dataDir, "mailboxes", "localhost", "alice");
  for (const sub of ["tmp", "new", "cur"]) fs.mkdirSync(path.join(root, sub), { recursive: true });
  const content = "Subject: m\n\nhello\n";
  for (let i = 0; i < n; i++) fs.writeFileSync(path.join(root, "new", `1700000000.M${i}P1Q${i}.test,S=${content.length},W=${content.length + 3}`), content);
}

async function login(port: number): Promise<RawPop3> {
  const { client } = await RawPop3.open(port);
  assert.match(await client.command("USER alice@localhost"), /^\+OK/);
  assert.match(await client.command("PASS pw"), /^\+OK/);
  return client;
}

describe("POP3 clients that send nonstop and never read", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: USERS, toml: "[limits]\nmax_junk_commands = 1000000000\n" });
    fillMaildrop(server, 20000);
  });
  after(async () => {
    await server.stop();
  });

  test("CAPA nonstop from 4 non-reading clients for 4 s: RSS stays within 60 MB of the start", async (t) => {
    const pid = server.process.pid!;
    const start = rssBytes(pid);
    const r = await flood({ port: server.pop3Port!, pid, connections: 4, ms: 4000, payload: repeated("CAPA\r\n") });
    const grew = r.peakRss - start;
    t.diagnostic(`RSS start ${(start / MB).toFixed(1)} MB, peak ${(r.peakRss / MB).toFixed(1)} MB; clients wrote ${(r.written / MB).toFixed(1)} MB`);
    assert.ok(grew < 60 * MB, `RSS grew by ${(grew / MB).toFixed(1)} MB`);
  });

  test("LIST of a 20,000-message maildrop nonstop, never read: RSS stays within 100 MB; LIST and UIDL still answer in full", async (t) => {
    const pid = server.process.pid!;
    // One login first: it starts the password worker (an isolate, and scrypt's 16 MB), a one-time
    // cost that is not the flood's.
    const warm = await RawPop3.open(server.pop3Port!);
    await warm.client.command("USER alice@localhost");
    assert.match(await warm.client.command("PASS pw"), /^\+OK/);
    assert.match(await warm.client.command("QUIT"), /^\+OK/);
    warm.client.close();
    // Each flooding client logs in (one at a time: the maildrop lock), floods, and is cut.
    const start = rssBytes(pid);
    const r = await flood({ port: server.pop3Port!, pid, connections: 1, ms: 4000, payload: repeated("LIST\r\n"), first: { send: LOGIN, until: /^\+OK alice@localhost has/m } });
    const grew = r.peakRss - start;
    t.diagnostic(`RSS start ${(start / MB).toFixed(1)} MB, peak ${(r.peakRss / MB).toFixed(1)} MB; clients wrote ${(r.written / MB).toFixed(1)} MB`);
    // Each LIST makes 20,000 short strings; collected garbage lags, so the peak sits at 40-65 MB above
    // the start on this machine and stays there (main: +406 MB in the same 4 s, growing).
    assert.ok(grew < 100 * MB, `RSS grew by ${(grew / MB).toFixed(1)} MB`);
    // The cut session releases the lock once the server notices; then a reader gets everything.
    let c: RawPop3 | null = null;
    for (const deadline = Date.now() + 10_000; !c && Date.now() < deadline; ) {
      const { client } = await RawPop3.open(server.pop3Port!);
      await client.command("USER alice@localhost");
      if ((await client.command("PASS pw")).startsWith("+OK")) c = client;
      else client.close();
    }
    assert.ok(c, "no login within 10 s of the flood");
    const list = await c.multiCommand("LIST");
    assert.match(list.status, /^\+OK 20000 messages/);
    const lines = list.body.toString("latin1").split("\r\n").filter(Boolean);
    assert.equal(lines.length, 20000);
    assert.equal(lines[19999], "20000 21");
    const uidl = await c.multiCommand("UIDL");
    assert.equal(uidl.body.toString("latin1").split("\r\n").filter(Boolean).length, 20000);
    assert.match(await c.command("QUIT"), /^\+OK/);
  });
});

describe("POP3 command allowance and [IN-USE] logs", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: USERS, toml: "[limits]\nmax_junk_commands = 5\n" });
  });
  after(async () => {
    await server.stop();
  });

  test("every command counts: past max_junk_commands (+8 per message) the session gets -ERR and is closed", async () => {
    const { client } = await RawPop3.open(server.pop3Port!);
    for (let i = 0; i < 5; i++) assert.match((await client.multiCommand("CAPA")).status, /^\+OK/);
    assert.equal(await client.command("CAPA"), "-ERR too many commands in this session, closing connection");
    await client.waitClosed();
    await eventually("the session log", () => server.logLines().find((l) => l.msg === "pop3 session" && l.end === "too-many-commands"));
  });

  test("unknown commands count too", async () => {
    const { client } = await RawPop3.open(server.pop3Port!);
    for (let i = 0; i < 5; i++) assert.match(await client.command("XYZZY"), /^-ERR unknown command/);
    assert.match(await client.command("XYZZY"), /^-ERR too many commands/);
    await client.waitClosed();
  });

  test("a login that finds the maildrop locked logs its user ([IN-USE])", async () => {
    const first = await login(server.pop3Port!);
    const { client: second } = await RawPop3.open(server.pop3Port!);
    await second.command("USER alice@localhost");
    assert.match(await second.command("PASS pw"), /^-ERR \[IN-USE\]/);
    assert.match(await second.command("QUIT"), /^\+OK/);
    const end = await eventually("the session line", () => server.logLines().find((l) => l.msg === "pop3 session" && l.end === "quit" && l.retrieved === 0 && l.user !== null));
    assert.equal(end.user, "alice@localhost");
    const inUse = server.logLines().find((l) => l.msg === "pop3 maildrop in use");
    assert.equal(inUse?.user, "alice@localhost");
    assert.match(await first.command("QUIT"), /^\+OK/);
  });
});
