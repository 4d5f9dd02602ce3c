// End-to-end tests of the POP3 server: the real `petrel serve`, mail delivered over SMTP, then read
// with Python's poplib, curl, fetchmail and a raw client. Checks exact octet counts, byte-exact
// content against the Maildir files, locking, UPDATE only on QUIT, UIDL stability and the limits.
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { PETREL_BIN, startTestServer, type TestServer } from "./helpers/server.js";
import { RawSmtp } from "./helpers/smtp-client.js";
import { RawPop3, unstuff } from "./helpers/pop3-client.js";
import { requireTool } from "./helpers/tools.js";
import { fetchmail, type FetchmailRun } from "./helpers/tls-tools.js";

// ---- delivering mail over SMTP ----

async function expectCode(p: Promise<{ code: number; raw: string }>, code: number): Promise<void> {
  const r = await p;
  assert.equal(r.code, code, r.raw);
}

/** One SMTP transaction to `to`: `body` sends the content after RCPT and leaves its 250 to read. */
async function deliver(port: number, to: string, body: (c: RawSmtp) => Promise<void>): Promise<void> {
  const c = await RawSmtp.connect(port);
  try {
    await expectCode(c.reply(), 220);
    await expectCode(c.command("EHLO client.test"), 250);
    await expectCode(c.command("MAIL FROM:<sender@example.test>"), 250);
    await expectCode(c.command(`RCPT TO:<${to}>`), 250);
    await body(c);
    await expectCode(c.reply(), 250);
    await expectCode(c.command("QUIT"), 221);
  } finally {
    c.close();
  }
}

/** Delivers `content` (CRLF line ends, ending in CRLF) with DATA. */
function sendData(port: number, to: string, content: string): Promise<void> {
  return deliver(port, to, async (c) => {
    await expectCode(c.command("DATA"), 354);
    c.write(content.replace(/^\./gm, "..") + ".\r\n");
  });
}

/** Delivers raw bytes with BDAT, so bare LFs reach the Maildir unchanged. */
function sendBdat(port: number, to: string, content: Buffer): Promise<void> {
  return deliver(port, to, async (c) => {
    c.write(Buffer.concat([Buffer.from(`BDAT ${content.length} LAST\r\n`), content]));
  });
}

function message(to: string, subject: string, body: string): string {
  return `From: sender@example.test\r\nTo: ${to}\r\nSubject: ${subject}\r\n\r\n${body}`;
}

// ---- what the Maildir holds ----

/** Maildir files of an address by UIDL id (the name before "," or ":"). */
function filesByUid(server: TestServer, address: string): Map<string, string> {
  return new Map(server.mailbox(address).map((f) => [path.basename(f).split(/[,:]/)[0]!, f]));
}

/** What RETR must return for a file: its bytes with every bare LF as CRLF. */
function withCrlf(file: string): Buffer {
  return Buffer.from(fs.readFileSync(file).toString("latin1").replace(/(?<!\r)\n/g, "\r\n"), "latin1");
}

/** Waits until the server logged `count` POP3 session ends. */
async function sessionsEnded(server: TestServer, count: number): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const ends = server.logLines().filter((l) => l.msg === "pop3 session");
    if (ends.length >= count) return ends;
    if (Date.now() > deadline) throw new Error(`only ${ends.length} POP3 sessions ended:\n${server.logs()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---- Python's poplib ----

const POPLIB_DRIVER = `
import base64, json, poplib, sys
port, ops = int(sys.argv[1]), json.loads(sys.argv[2])
out, p = [], None
def data(lines):
    return base64.b64encode(b"".join(l + b"\\r\\n" for l in lines)).decode()
for op in ops:
    name, args = op[0], op[1:]
    try:
        if name == "connect":
            p = poplib.POP3("127.0.0.1", port, timeout=10)
            out.append(p.getwelcome().decode())
        elif name == "user": out.append(p.user(args[0]).decode())
        elif name == "pass": out.append(p.pass_(args[0]).decode())
        elif name == "apop": out.append(p.apop(args[0], args[1]).decode())
        elif name == "stat": out.append(list(p.stat()))
        elif name == "list": out.append([l.decode() for l in p.list()[1]])
        elif name == "uidl": out.append([l.decode() for l in p.uidl()[1]])
        elif name == "retr":
            resp, lines, octets = p.retr(args[0])
            out.append({"resp": resp.decode(), "data": data(lines), "octets": octets})
        elif name == "top":
            resp, lines, octets = p.top(args[0], args[1])
            out.append({"resp": resp.decode(), "data": data(lines)})
        elif name == "dele": out.append(p.dele(args[0]).decode())
        elif name == "rset": out.append(p.rset().decode())
        elif name == "quit": out.append(p.quit().decode())
        elif name == "drop":
            p.close()
            out.append("dropped")
    except Exception as e:
        out.append({"error": str(e)})
print(json.dumps(out))
`;

type PoplibResult = string | number[] | string[] | { resp: string; data: string; octets?: number } | { error: string };

/** Runs poplib operations in one python3 process (one connection per "connect"). */
function poplib(port: number, ops: (string | number)[][]): PoplibResult[] {
  const r = spawnSync("python3", ["-c", POPLIB_DRIVER, String(port), JSON.stringify(ops)], { encoding: "utf8", timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as PoplibResult[];
}

function retrData(r: PoplibResult | undefined): { resp: string; data: Buffer; octets?: number } {
  assert.ok(r && typeof r === "object" && "data" in r, JSON.stringify(r));
  return { resp: r.resp, data: Buffer.from(r.data, "base64"), ...(r.octets === undefined ? {} : { octets: r.octets }) };
}

// ---- curl and fetchmail ----

function curl(args: string[]): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync("curl", ["-sS", "--noproxy", "*", "--max-time", "15", ...args], { timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

/** fetchmail once against the server (helpers/tls-tools.ts), each message through an MDA into its own file. */
async function fetchmailPlain(server: TestServer, user: string, password: string, keep: boolean): Promise<FetchmailRun & { output: string }> {
  // No TLS yet (a later issue): sslproto '' stops fetchmail 6.4 from insisting on STLS.
  const r = await fetchmail({ port: server.pop3Port!, user, password, keep, options: "sslproto ''" });
  return { ...r, output: r.stdout + r.stderr };
}

// ---- a second `petrel serve` on the same data_dir (restart) ----

interface Serving {
  readonly process: ChildProcess;
  readonly smtpPort: number;
  readonly pop3Port: number;
  stop(): Promise<void>;
}

async function serve(configPath: string): Promise<Serving> {
  const child = spawn(PETREL_BIN, ["serve", "--config", configPath], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (out += d));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const lines = () =>
    out
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const deadline = Date.now() + 15_000;
  while (!lines().some((l) => l.msg === "petrel started")) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`petrel serve did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const port = (name: string) => lines().find((l) => l.msg === "listening" && l.listener === name)!.port as number;
  return {
    process: child,
    smtpPort: port("smtp"),
    pop3Port: port("pop3"),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

function tools(t: TestContext, ...names: string[]): boolean {
  return names.every((n) => requireTool(t, n));
}

// ---- the tests ----

describe("POP3 end to end", () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({
      users: [
        ["alice@example.test", "alice-pw"],
        ["bob@example.test", "bob-pw"],
        ["carol@example.test", "carol-pw"],
        ["dave@example.test", "dave-pw"],
        ["erin@example.test", "erin-pw"],
        ["frank@example.test", "frank-pw"],
      ],
      toml: "[pop3]\nauth_failure_delay = 0.1\nmax_auth_failures = 3\n",
    });
    assert.ok(server.pop3Port, "the pop3 listener is up");
    const r = server.petrel(["user", "passwd", "bob@example.test", "--password-stdin", "--apop"], "bob-pw\n");
    assert.equal(r.status, 0, r.stderr);
    // alice: three messages, one with dot lines, one with bare LFs (BDAT keeps them).
    await sendData(server.smtpPort, "alice@example.test", message("alice@example.test", "first", "hello\r\n.a dot line\r\n..two dots\r\n.\r\nend\r\n"));
    await sendBdat(server.smtpPort, "alice@example.test", Buffer.from(message("alice@example.test", "second", "").replace(/\r\n/g, "\n") + "bare LF\n.dot after LF\nlast\n"));
    await sendData(server.smtpPort, "alice@example.test", message("alice@example.test", "third", "short\r\n"));
  });

  after(async () => {
    await server.stop();
  });

  test("poplib: STAT, LIST, UIDL, RETR and TOP match the Maildir files byte for byte", (t) => {
    if (!tools(t, "python3")) return;
    const files = filesByUid(server, "alice@example.test");
    assert.equal(files.size, 3);
    const [welcome, , loggedIn, stat, list, uidl, r1, r2, r3, top, quit] = poplib(server.pop3Port!, [
      ["connect"],
      ["user", "Alice@Example.TEST"],
      ["pass", "alice-pw"],
      ["stat"],
      ["list"],
      ["uidl"],
      ["retr", 1],
      ["retr", 2],
      ["retr", 3],
      ["top", 2, 1],
      ["quit"],
    ]);
    assert.match(welcome as string, /^\+OK Petrel POP3 server ready <\d+\.\d+\.\d+@mx\.petrel\.test>$/);
    assert.match(loggedIn as string, /^\+OK alice@example\.test has 3 messages/);
    const ids = (uidl as string[]).map((l) => l.split(" ")[1]!);
    assert.deepEqual(new Set(ids), new Set(files.keys()), "UIDL ids are the Maildir unique ids");
    const expected = ids.map((id) => withCrlf(files.get(id)!));
    assert.deepEqual(stat, [3, expected.reduce((n, b) => n + b.length, 0)]);
    assert.deepEqual(list, expected.map((b, i) => `${i + 1} ${b.length}`));
    // The W= in the name is the exact CRLF size: the second message (bare LFs) proves it.
    for (const [i, id] of ids.entries()) assert.equal(Number(/,W=(\d+)/.exec(files.get(id)!)![1]), expected[i]!.length);
    assert.ok(fs.readFileSync(files.get(ids[1]!)!).includes("bare LF\n"), "the file keeps its bare LFs");
    for (const [i, r] of [r1, r2, r3].entries()) {
      const got = retrData(r);
      assert.equal(got.resp, `+OK ${expected[i]!.length} octets`);
      assert.equal(got.octets, expected[i]!.length, "poplib counts exactly the announced octets");
      assert.ok(got.data.equals(expected[i]!), `message ${i + 1} is byte-exact:\n${got.data.toString("latin1")}`);
    }
    assert.match(retrData(r1).data.toString(), /\r\n\.a dot line\r\n\.\.two dots\r\n\.\r\nend\r\n$/);
    assert.match(retrData(r2).data.toString(), /Subject: second\r\n\r\nbare LF\r\n\.dot after LF\r\nlast\r\n$/);
    assert.match(retrData(top).data.toString(), /Subject: second\r\n\r\nbare LF\r\n$/);
    assert.match(quit as string, /^\+OK Petrel POP3 server signing off \(3 messages left\)$/);
  });

  test("raw client: octet counts announced by RETR equal the bytes sent", async () => {
    const files = filesByUid(server, "alice@example.test");
    const { client } = await RawPop3.open(server.pop3Port!);
    assert.equal(await client.command("USER alice@example.test"), "+OK send PASS");
    assert.match(await client.command("PASS alice-pw"), /^\+OK/);
    const uidl = (await client.multiCommand("UIDL")).body.toString().trim().split("\r\n");
    for (const line of uidl) {
      const [n, id] = line.split(" ");
      const r = await client.multiCommand(`RETR ${n}`);
      const body = unstuff(r.body);
      assert.equal(r.status, `+OK ${body.length} octets`);
      assert.ok(body.equals(withCrlf(files.get(id!)!)));
    }
    assert.match(await client.command("QUIT"), /^\+OK/);
  });

  test("curl: LIST and RETR (SASL PLAIN), and APOP only for an --apop user", (t) => {
    if (!tools(t, "curl")) return;
    const base = `pop3://alice%40example.test:alice-pw@127.0.0.1:${server.pop3Port}`;
    const list = curl([`${base}/`]);
    assert.equal(list.status, 0, list.stderr);
    const files = [...filesByUid(server, "alice@example.test").values()];
    const sizes = list.stdout.toString().trim().split("\r\n").map((l) => Number(l.split(" ")[1]));
    assert.deepEqual([...sizes].sort(), files.map((f) => withCrlf(f).length).sort());
    const first = curl([`${base}/1`]);
    assert.equal(first.status, 0, first.stderr);
    assert.ok(first.stdout.toString().includes("Subject: first\r\n"));
    assert.match(first.stdout.toString(), /\r\n\.a dot line\r\n\.\.two dots\r\n\.\r\nend\r\n$/, "curl removed the byte-stuffing");
    assert.equal(first.stdout.length, sizes[0]);
    const wrong = curl([`pop3://alice%40example.test:wrong@127.0.0.1:${server.pop3Port}/`]);
    assert.equal(wrong.status, 67, "login denied");
    const apop = ["--login-options", "AUTH=+APOP"];
    const bob = curl([...apop, `pop3://bob%40example.test:bob-pw@127.0.0.1:${server.pop3Port}/`]);
    assert.equal(bob.status, 0, `APOP works for bob (--apop): ${bob.stderr}`);
    const alice = curl([...apop, `${base}/`]);
    assert.equal(alice.status, 67, "APOP fails for alice (no --apop)");
  });

  test("poplib: APOP works for an --apop user and fails like a wrong password for others", (t) => {
    if (!tools(t, "python3")) return;
    const [, bob, , alice, , wrong] = poplib(server.pop3Port!, [
      ["connect"],
      ["apop", "bob@example.test", "bob-pw"],
      ["connect"],
      ["apop", "alice@example.test", "alice-pw"],
      ["connect"],
      ["apop", "bob@example.test", "not-bobs"],
    ]);
    assert.equal(bob, "+OK bob@example.test has 0 messages (0 octets)");
    assert.deepEqual(alice, { error: "b'-ERR [AUTH] invalid user name or password'" });
    assert.deepEqual(wrong, { error: "b'-ERR [AUTH] invalid user name or password'" });
  });

  test("DELE takes effect only at QUIT; a dropped connection deletes nothing", async (t) => {
    if (!tools(t, "python3")) return;
    await sendData(server.smtpPort, "carol@example.test", message("carol@example.test", "c1", "one\r\n"));
    await sendData(server.smtpPort, "carol@example.test", message("carol@example.test", "c2", "two\r\n"));
    const before = server.mailbox("carol@example.test");
    const ended = server.logLines().filter((l) => l.msg === "pop3 session").length;
    const dropped = poplib(server.pop3Port!, [["connect"], ["user", "carol@example.test"], ["pass", "carol-pw"], ["dele", 1], ["dele", 2], ["drop"]]);
    assert.deepEqual(dropped.slice(3), ["+OK message 1 deleted", "+OK message 2 deleted", "dropped"]);
    const ends = await sessionsEnded(server, ended + 1);
    assert.deepEqual([ends.at(-1)!.end, ends.at(-1)!.deleted], ["disconnected", 0]);
    assert.deepEqual(server.mailbox("carol@example.test"), before, "both messages are still there");

    const [, , , stat, dele, rset, dele2, quit] = poplib(server.pop3Port!, [
      ["connect"],
      ["user", "carol@example.test"],
      ["pass", "carol-pw"],
      ["stat"],
      ["dele", 1],
      ["rset"],
      ["dele", 1],
      ["quit"],
    ]);
    assert.equal((stat as number[])[0], 2);
    assert.equal(dele, "+OK message 1 deleted");
    assert.match(rset as string, /^\+OK maildrop has 2 messages/);
    assert.equal(dele2, "+OK message 1 deleted");
    assert.equal(quit, "+OK Petrel POP3 server signing off (1 message left)");
    const left = server.mailbox("carol@example.test");
    assert.equal(left.length, 1);
    assert.ok(fs.readFileSync(left[0]!, "latin1").includes("Subject: c2"), "message 1 (the first delivered) was removed");
    const end = (await sessionsEnded(server, ended + 2)).at(-1)!;
    assert.deepEqual([end.user, end.retrieved, end.deleted, end.end], ["carol@example.test", 0, 1, "quit"]);
    assert.ok(!server.logs().includes("carol-pw"), "passwords are never logged");
  });

  test("a second session for the same maildrop gets [IN-USE] until the first ends", async (t) => {
    if (!tools(t, "python3")) return;
    const first = await RawPop3.open(server.pop3Port!);
    assert.equal(await first.client.command("USER dave@example.test"), "+OK send PASS");
    assert.match(await first.client.command("PASS dave-pw"), /^\+OK/);
    const [, , locked, other] = poplib(server.pop3Port!, [["connect"], ["user", "DAVE@example.test"], ["pass", "dave-pw"], ["stat"]]);
    assert.deepEqual(locked, { error: "b'-ERR [IN-USE] maildrop is locked by another session, try again later'" });
    assert.deepEqual(other, { error: "b'-ERR not logged in yet: use USER and PASS, or APOP, first'" }, "still in AUTHORIZATION");
    first.client.close(); // dropped, not QUIT: the lock must still be released
    const ended = server.logLines().filter((l) => l.msg === "pop3 session").length;
    await sessionsEnded(server, ended + 1);
    const [, , ok] = poplib(server.pop3Port!, [["connect"], ["user", "dave@example.test"], ["pass", "dave-pw"], ["quit"]]);
    assert.equal(ok, "+OK dave@example.test has 0 messages (0 octets)");
  });

  test("messages delivered during a session appear in the next one; UIDL stays the same", async (t) => {
    if (!tools(t, "python3")) return;
    await sendData(server.smtpPort, "erin@example.test", message("erin@example.test", "e1", "one\r\n"));
    const { client } = await RawPop3.open(server.pop3Port!);
    await client.command("USER erin@example.test");
    assert.match(await client.command("PASS erin-pw"), /has 1 message /);
    const uidlBefore = (await client.multiCommand("UIDL")).body.toString();
    await sendData(server.smtpPort, "erin@example.test", message("erin@example.test", "e2", "two\r\n"));
    assert.match(await client.command("STAT"), /^\+OK 1 /, "the snapshot does not change");
    assert.equal(await client.command("RETR 2"), "-ERR no such message, only 1 message in maildrop");
    assert.match(await client.command("QUIT"), /\(1 message left\)/);
    const [, , , uidl] = poplib(server.pop3Port!, [["connect"], ["user", "erin@example.test"], ["pass", "erin-pw"], ["uidl"], ["quit"]]);
    assert.equal((uidl as string[]).length, 2);
    assert.equal(`${(uidl as string[])[0]}\r\n`, uidlBefore, "message 1 keeps its number and id");
  });

  test("fetchmail pulls every message, with keep and then deleting them", async (t) => {
    if (!tools(t, "fetchmail")) return;
    for (const i of [1, 2, 3]) await sendData(server.smtpPort, "frank@example.test", message("frank@example.test", `fetch ${i}`, `body ${i}\r\n.dot ${i}\r\n`));
    const files = server.mailbox("frank@example.test");
    const originals = files.map((f) => fs.readFileSync(f, "latin1").replace(/\r\n/g, "\n"));
    const kept = await fetchmailPlain(server, "frank@example.test", "frank-pw", true);
    assert.equal(kept.status, 0, kept.output);
    assert.equal(kept.messages.length, 3, kept.output);
    for (const original of originals) {
      // fetchmail adds its own Received: line after Return-Path; everything after is ours, unchanged.
      const rest = original.slice(original.indexOf("\n") + 1);
      assert.ok(kept.messages.some((m) => m.endsWith(rest)), `fetched unchanged:\n${rest}`);
    }
    assert.deepEqual(server.mailbox("frank@example.test"), files, "keep leaves the maildrop alone");

    const fetched = await fetchmailPlain(server, "frank@example.test", "frank-pw", false);
    assert.equal(fetched.status, 0, fetched.output);
    assert.equal(fetched.messages.length, 3);
    assert.deepEqual(server.mailbox("frank@example.test"), [], "nokeep deletes them at QUIT");
    const again = await fetchmailPlain(server, "frank@example.test", "frank-pw", false);
    assert.equal(again.status, 1, `1 = no mail: ${again.output}`);
  });

  test("protocol errors: unknown commands, wrong state, too-long lines, and too many auth failures", async () => {
    const { client } = await RawPop3.open(server.pop3Port!);
    assert.equal(await client.command("HELO there"), "-ERR unknown command HELO");
    assert.equal(await client.command("RETR 1"), "-ERR not logged in yet: use USER and PASS, or APOP, first");
    assert.equal(await client.command("PASS x"), "-ERR send USER first");
    assert.equal(await client.command("USER " + "x".repeat(400)), "-ERR line too long: at most 255 octets including CRLF");
    assert.equal(await client.command("USER alice@example.test"), "+OK send PASS");
    const started = Date.now();
    assert.equal(await client.command("PASS wrong"), "-ERR [AUTH] invalid user name or password");
    assert.ok(Date.now() - started >= 90, "auth_failure_delay = 0.1 slows the answer");
    assert.equal(await client.command("USER alice@example.test"), "+OK send PASS");
    assert.equal(await client.command("PASS wrong again"), "-ERR [AUTH] invalid user name or password");
    assert.equal(await client.command("APOP alice@example.test 0123456789abcdef0123456789abcdef"), "-ERR [AUTH] invalid user name or password; too many failures, closing connection");
    await client.waitClosed();

    const second = await RawPop3.open(server.pop3Port!);
    await second.client.command("USER alice@example.test");
    await second.client.command("PASS alice-pw");
    assert.equal(await second.client.command("USER alice@example.test"), "-ERR already logged in");
    assert.equal(await second.client.command("TOP 1"), "-ERR bad arguments, usage: TOP msg lines");
    assert.equal(await second.client.command("DELE 9"), "-ERR no such message, only 3 messages in maildrop");
    second.client.write(Buffer.from([0xff, 0xfe, 0x00, 0x0d, 0x0a]));
    assert.equal(await second.client.line(), "-ERR bad characters in command");
    assert.match(await second.client.command("QUIT"), /^\+OK/);
  });
});

describe("POP3 across restarts and timeouts", () => {
  test("UIDL ids survive a restart; shutdown tells an idle session [SYS/TEMP]", async (t) => {
    if (!tools(t, "python3")) return;
    const server = await startTestServer({ users: [["gina@example.test", "gina-pw"]] });
    let second: Serving | undefined;
    try {
      for (const i of [1, 2]) await sendData(server.smtpPort, "gina@example.test", message("gina@example.test", `g${i}`, "x\r\n"));
      const ops = [["connect"], ["user", "gina@example.test"], ["pass", "gina-pw"], ["uidl"], ["quit"]];
      const first = poplib(server.pop3Port!, ops)[3] as string[];
      assert.equal(first.length, 2);
      assert.deepEqual(poplib(server.pop3Port!, ops)[3], first, "the same ids in a second session");

      // Stop the process but keep its data_dir, then serve the same config again.
      server.process.kill("SIGTERM");
      await new Promise((resolve) => (server.process.exitCode !== null ? resolve(null) : server.process.once("exit", resolve)));
      second = await serve(server.configPath);
      assert.deepEqual(poplib(second.pop3Port, ops)[3], first, "the same ids after a restart");
      await sendData(second.smtpPort, "gina@example.test", message("gina@example.test", "g3", "x\r\n"));
      const third = poplib(second.pop3Port, ops)[3] as string[];
      assert.deepEqual(third.slice(0, 2), first);
      assert.ok(!first.map((l) => l.split(" ")[1]).includes(third[2]!.split(" ")[1]), "a new message gets a new id");

      const { client } = await RawPop3.open(second.pop3Port);
      await client.command("USER gina@example.test");
      assert.match(await client.command("PASS gina-pw"), /^\+OK/);
      assert.equal(await client.command("DELE 1"), "+OK message 1 deleted");
      second.process.kill("SIGTERM");
      assert.equal(await client.line(), "-ERR [SYS/TEMP] server shutting down, closing connection");
      await client.waitClosed();
      await second.stop();
      assert.equal(server.mailbox("gina@example.test").length, 3, "shutdown is not an UPDATE");
    } finally {
      await second?.stop();
      await server.stop();
    }
  });

  test("an idle session is closed after idle_timeout (autologout)", async () => {
    const server = await startTestServer({ users: [["hank@example.test", "hank-pw"]], toml: "[pop3]\nidle_timeout = 1\n" });
    try {
      await sendData(server.smtpPort, "hank@example.test", message("hank@example.test", "h", "x\r\n"));
      const { client } = await RawPop3.open(server.pop3Port!);
      await client.command("USER hank@example.test");
      assert.match(await client.command("PASS hank-pw"), /^\+OK/);
      assert.equal(await client.command("DELE 1"), "+OK message 1 deleted");
      const started = Date.now();
      assert.equal(await client.line(5000), "-ERR [SYS/TEMP] autologout: idle for too long, closing connection");
      assert.ok(Date.now() - started >= 900, "not before idle_timeout");
      await client.waitClosed();
      assert.equal(server.mailbox("hank@example.test").length, 1, "autologout does not enter UPDATE");
      const end = (await sessionsEnded(server, 1)).at(-1)!;
      assert.equal(end.end, "timeout");
    } finally {
      await server.stop();
    }
  });
});
