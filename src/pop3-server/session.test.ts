// Tests of Pop3Session on real loopback sockets with an in-memory account list and temporary
// Maildirs: transcripts for every command and state rule, pipelining, auth failures, APOP, AUTH
// PLAIN, the maildrop lock, autologout, shutdown and streaming with backpressure (RFC 1939, 2449, 5034);
// STLS and the plaintext-login rule (RFC 2595) with a throwaway certificate and a peer made non-loopback.
import { Connection, type TlsContextSource } from "../protocol/connection.js";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import { once } from "node:events";
import tls from "node:tls";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { RawPop3, unstuff } from "../../test/helpers/pop3-client.js";
import { makeTestCert } from "../../test/helpers/tls-cert.js";
import { ApopTimestamps, apopDigest, checkApopDigest } from "../auth/apop.js";
import { Maildrop } from "./maildrop.js";
import { MaildropLocks } from "./maildrop-locks.js";
import { Pop3Session, type Pop3Accounts, type Pop3SessionOptions } from "./session.js";

const USERS = new Map<string, { password: string; apop: string | null }>([
  ["alice@example.test", { password: "secret", apop: null }],
  ["bob@example.test", { password: "bob pw", apop: "bob pw" }],
]);

const accounts: Pop3Accounts = {
  async password(_peer, name, password) {
    const user = name.toLowerCase();
    // A hash that takes 200 ms (a loaded machine, a costlier scheme): its failure must not come later.
    if (user === "slow@example.test") await new Promise((r) => setTimeout(r, 200));
    return USERS.get(user)?.password === password ? { kind: "ok", user } : { kind: "failed", user };
  },
  apop(_peer, name, timestamp, digest) {
    const user = name.toLowerCase();
    const secret = USERS.get(user)?.apop ?? null;
    return secret !== null && checkApopDigest(timestamp, secret, digest) ? { kind: "ok", user } : { kind: "failed", user };
  },
};

interface Harness {
  readonly port: number;
  readonly dir: string;
  readonly locks: MaildropLocks;
  readonly sessions: Pop3Session[];
  readonly connections: Connection[];
  readonly serverSockets: net.Socket[];
  readonly logs: Record<string, unknown>[];
  readonly rawLogs: string[];
  /** Resolves when every session so far has ended. */
  settled(): Promise<void>;
  deliver(address: string, unique: string, content: string | Buffer): string;
  files(address: string): string[];
  close(): Promise<void>;
}

/** How the harness's connections look to the session: a certificate for STLS, a peer off this machine. */
interface HarnessConnection {
  readonly tls?: TlsContextSource;
  /** false: the session sees a non-loopback peer (the test itself still talks over 127.0.0.1). */
  readonly loopback?: boolean;
}

async function startHarness(options: Partial<Pop3SessionOptions> = {}, how: HarnessConnection = {}): Promise<Harness> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-pop3-session-"));
  const locks = new MaildropLocks();
  const timestamps = new ApopTimestamps("pop.test");
  const sessions: Pop3Session[] = [];
  const connections: Connection[] = [];
  const serverSockets: net.Socket[] = [];
  const runs: Promise<void>[] = [];
  const logs: Record<string, unknown>[] = [];
  const rawLogs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      rawLogs.push(chunk.toString());
      logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const log = pino({ level: "info" }, sink);
  const opts: Pop3SessionOptions = { hostname: "pop.test", idleTimeoutMs: 10_000, maxAuthFailures: 3, authFailureDelayMs: 0, ...options };
  const mailbox = (address: string) => path.join(dir, address);
  const server = net.createServer((socket) => {
    socket.on("error", () => undefined);
    const conn = new Connection(socket, { listener: "pop3", tls: how.tls ?? null, handshakeTimeoutMs: 2000 });
    if (how.loopback === false) Object.assign(conn.info, { peer: "192.0.2.7", loopback: false });
    connections.push(conn);
    const session = new Pop3Session(conn, {
      options: opts,
      accounts,
      locks,
      timestamps,
      openMaildrop: (address) => Maildrop.open(mailbox(address)),
      log,
    });
    sessions.push(session);
    serverSockets.push(socket);
    runs.push(session.run().finally(() => socket.destroy()));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    dir,
    locks,
    sessions,
    connections,
    serverSockets,
    logs,
    rawLogs,
    async settled() {
      await Promise.all(runs);
    },
    deliver(address, unique, content) {
      const body = typeof content === "string" ? Buffer.from(content, "latin1") : content;
      const crlf = Buffer.from(body.toString("latin1").replace(/(?<!\r)\n/g, "\r\n"), "latin1");
      const name = `${unique},S=${body.length},W=${crlf.length}`;
      for (const d of ["tmp", "new", "cur"]) fs.mkdirSync(path.join(mailbox(address), d), { recursive: true });
      fs.writeFileSync(path.join(mailbox(address), "new", name), body);
      return name;
    },
    files(address) {
      return ["new", "cur"].flatMap((d) => {
        const p = path.join(mailbox(address), d);
        return fs.existsSync(p) ? fs.readdirSync(p) : [];
      });
    },
    async close() {
      for (const s of serverSockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(runs);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function login(h: Harness, user = "alice@example.test", password = "secret"): Promise<RawPop3> {
  const { client } = await RawPop3.open(h.port);
  assert.equal(await client.command(`USER ${user}`), "+OK send PASS");
  const reply = await client.command(`PASS ${password}`);
  assert.match(reply, /^\+OK /);
  return client;
}

const MSG1 = "Subject: one\r\n\r\n.starts with a dot\r\nbody\r\n";
const MSG2 = "Subject: two\n\nbare LF line\nlast line without end";

describe("Pop3Session transcript", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test("greeting with a unique APOP timestamp, and CAPA in AUTHORIZATION", async () => {
    const a = await RawPop3.open(h.port);
    const b = await RawPop3.open(h.port);
    assert.match(a.greeting, /^\+OK Petrel POP3 server ready <\d+\.\d+\.\d+@pop\.test>$/);
    assert.notEqual(a.greeting, b.greeting);
    const capa = await a.client.multiCommand("CAPA");
    assert.equal(capa.status, "+OK Capability list follows");
    assert.equal(
      capa.body.toString(),
      "TOP\r\nUSER\r\nSASL PLAIN\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nEXPIRE NEVER\r\nIMPLEMENTATION Petrel\r\n",
    );
    assert.equal(await a.client.command("QUIT"), "+OK Petrel POP3 server signing off");
    await a.client.waitClosed();
    b.client.close();
  });

  test("a whole session: STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP, QUIT", async () => {
    const u1 = "1700000001.M1P1Q1.host";
    const u2 = "1700000002.M1P1Q1.host";
    const u3 = "1700000003.M1P1Q1.host";
    h.deliver("alice@example.test", u2, MSG2);
    h.deliver("alice@example.test", u1, MSG1);
    const third = h.deliver("alice@example.test", u3, "Subject: three\r\n\r\nx\r\n");
    const size1 = MSG1.length;
    const size2 = MSG2.replace(/\n/g, "\r\n").length;
    const size3 = 21;
    const { client } = await RawPop3.open(h.port);
    assert.equal(await client.command("USER Alice@Example.TEST"), "+OK send PASS");
    assert.equal(await client.command("PASS secret"), `+OK alice@example.test has 3 messages (${size1 + size2 + size3} octets)`);
    assert.equal(await client.command("STAT"), `+OK 3 ${size1 + size2 + size3}`);
    const list = await client.multiCommand("LIST");
    assert.equal(list.status, `+OK 3 messages (${size1 + size2 + size3} octets)`);
    assert.equal(list.body.toString(), `1 ${size1}\r\n2 ${size2}\r\n3 ${size3}\r\n`);
    assert.equal(await client.command("LIST 2"), `+OK 2 ${size2}`);
    assert.equal((await client.multiCommand("UIDL")).body.toString(), `1 ${u1}\r\n2 ${u2}\r\n3 ${u3}\r\n`);
    assert.equal(await client.command("UIDL 3"), `+OK 3 ${u3}`);

    const r1 = await client.multiCommand("RETR 1");
    assert.equal(r1.status, `+OK ${size1} octets`);
    assert.equal(r1.body.toString(), "Subject: one\r\n\r\n..starts with a dot\r\nbody\r\n", "byte-stuffed");
    assert.equal(unstuff(r1.body).length, size1, "the octet count is the unstuffed size");
    const r2 = await client.multiCommand("RETR 2");
    assert.equal(r2.status, `+OK ${size2} octets`);
    assert.equal(r2.body.toString(), "Subject: two\r\n\r\nbare LF line\r\nlast line without end\r\n", "CRLF added at the end too");

    const top = await client.multiCommand("TOP 2 0");
    assert.equal(top.status, "+OK top of message follows");
    assert.equal(top.body.toString(), "Subject: two\r\n\r\n");
    assert.equal((await client.multiCommand("TOP 1 1")).body.toString(), "Subject: one\r\n\r\n..starts with a dot\r\n");

    assert.equal(await client.command("DELE 1"), "+OK message 1 deleted");
    assert.equal(await client.command("DELE 1"), "-ERR message 1 already deleted");
    assert.equal(await client.command("RETR 1"), "-ERR message 1 already deleted");
    assert.equal(await client.command("TOP 1 0"), "-ERR message 1 already deleted");
    assert.equal(await client.command("LIST 1"), "-ERR message 1 already deleted");
    assert.equal(await client.command("UIDL 1"), "-ERR message 1 already deleted");
    assert.equal(await client.command("STAT"), `+OK 2 ${size2 + size3}`);
    assert.equal((await client.multiCommand("LIST")).body.toString(), `2 ${size2}\r\n3 ${size3}\r\n`);
    assert.equal(await client.command("RSET"), `+OK maildrop has 3 messages (${size1 + size2 + size3} octets)`);
    assert.equal(await client.command("STAT"), `+OK 3 ${size1 + size2 + size3}`);
    assert.equal(await client.command("DELE 1"), "+OK message 1 deleted");
    assert.equal(await client.command("DELE 2"), "+OK message 2 deleted");
    assert.equal(await client.command("NOOP"), "+OK");
    assert.equal(h.files("alice@example.test").length, 3, "nothing removed before QUIT");
    assert.equal(await client.command("QUIT"), "+OK Petrel POP3 server signing off (1 message left)");
    await client.waitClosed();
    assert.deepEqual(h.files("alice@example.test"), [third]);
    await h.settled();
    const end = h.logs.filter((l) => l.msg === "pop3 session").at(-1)!;
    assert.equal(end.user, "alice@example.test");
    assert.equal(end.retrieved, 2);
    assert.equal(end.deleted, 2);
    assert.equal(end.end, "quit");
    fs.rmSync(path.join(h.dir, "alice@example.test"), { recursive: true });
  });

  test("wrong state, unknown commands and bad arguments get -ERR and the session goes on", async () => {
    h.deliver("alice@example.test", "1700000001.M1P1Q1.host", "x\r\n");
    const { client } = await RawPop3.open(h.port);
    assert.equal(await client.command("STAT"), "-ERR not logged in yet: use USER and PASS, or APOP, first");
    assert.equal(await client.command("RETR 1"), "-ERR not logged in yet: use USER and PASS, or APOP, first");
    assert.equal(await client.command("PASS secret"), "-ERR send USER first");
    assert.equal(await client.command("XYZZY"), "-ERR unknown command XYZZY");
    assert.equal(await client.command(""), "-ERR empty command");
    assert.equal(await client.command("USER"), "-ERR bad arguments, usage: USER name");
    assert.equal(await client.command("USER a b"), "-ERR bad arguments, usage: USER name");
    assert.equal(await client.command("STAT\x00"), "-ERR bad characters in command");
    assert.equal(await client.command("USER alice@example.test"), "+OK send PASS");
    assert.equal(await client.command("PASS"), "-ERR bad arguments, usage: PASS password");
    assert.equal(await client.command("PASS secret"), "+OK alice@example.test has 1 message (3 octets)");
    assert.equal(await client.command("USER alice@example.test"), "-ERR already logged in");
    assert.equal(await client.command("PASS secret"), "-ERR already logged in");
    assert.equal(await client.command("APOP a b"), "-ERR already logged in");
    assert.equal(await client.command("STAT 1"), "-ERR bad arguments, usage: STAT");
    assert.equal(await client.command("RETR"), "-ERR bad arguments, usage: RETR msg");
    assert.equal(await client.command("RETR 0"), "-ERR no such message, only 1 message in maildrop");
    assert.equal(await client.command("RETR 2"), "-ERR no such message, only 1 message in maildrop");
    assert.equal(await client.command("RETR -1"), "-ERR invalid message number -1: expected a number from 1");
    assert.equal(await client.command("RETR 1x"), "-ERR invalid message number 1x: expected a number from 1");
    assert.equal(await client.command("RETR 99999999999999999999"), "-ERR invalid message number 99999999999999999999: expected a number from 1");
    assert.equal(await client.command("DELE abc"), "-ERR invalid message number abc: expected a number from 1");
    assert.equal(await client.command("LIST 1 2"), "-ERR bad arguments, usage: LIST [msg]");
    assert.equal(await client.command("TOP 1"), "-ERR bad arguments, usage: TOP msg lines");
    assert.equal(await client.command("TOP 1 -1"), "-ERR invalid number of lines: expected a number 0 or more");
    assert.equal(await client.command("stat"), "+OK 1 3", "verbs are case-insensitive");
    assert.equal(await client.command("QUIT"), "+OK Petrel POP3 server signing off (1 message left)");
    fs.rmSync(path.join(h.dir, "alice@example.test"), { recursive: true });
  });

  test("lines over 255 octets are refused and skipped; 255 octets with CRLF are fine", async () => {
    const { client } = await RawPop3.open(h.port);
    assert.equal(await client.command("USER " + "a".repeat(300)), "-ERR line too long: at most 255 octets including CRLF");
    assert.equal(await client.command("X".repeat(253)), `-ERR unknown command ${"X".repeat(20)}...`);
    assert.equal(await client.command("X".repeat(254)), "-ERR line too long: at most 255 octets including CRLF");
    client.write("NOOP " + "b".repeat(100_000) + "\r\nCAPA\r\n");
    assert.equal(await client.line(), "-ERR line too long: at most 255 octets including CRLF");
    assert.equal((await client.multi()).status, "+OK Capability list follows", "the rest of the long line was dropped");
    client.close();
  });

  test("pipelined commands are answered in order", async () => {
    h.deliver("alice@example.test", "1700000001.M1P1Q1.host", MSG1);
    const { client } = await RawPop3.open(h.port);
    client.write("USER alice@example.test\r\nPASS secret\r\nSTAT\r\nLIST\r\nRETR 1\r\nTOP 1 0\r\nBOGUS\r\nNOOP\r\nQUIT\r\n");
    assert.equal(await client.line(), "+OK send PASS");
    assert.match(await client.line(), /^\+OK alice@example\.test has 1 message/);
    assert.equal(await client.line(), `+OK 1 ${MSG1.length}`);
    assert.equal((await client.multi()).body.toString(), `1 ${MSG1.length}\r\n`);
    assert.equal(unstuff((await client.multi()).body).toString(), MSG1);
    assert.equal((await client.multi()).body.toString(), "Subject: one\r\n\r\n");
    assert.equal(await client.line(), "-ERR unknown command BOGUS");
    assert.equal(await client.line(), "+OK");
    assert.match(await client.line(), /^\+OK Petrel POP3 server signing off/);
    await client.waitClosed();
    fs.rmSync(path.join(h.dir, "alice@example.test"), { recursive: true });
  });

  test("a user who never got mail has an empty maildrop", async () => {
    const client = await login(h, "bob@example.test", "bob pw");
    assert.equal(await client.command("STAT"), "+OK 0 0");
    assert.equal((await client.multiCommand("LIST")).body.toString(), "");
    assert.equal(await client.command("RETR 1"), "-ERR no such message, maildrop is empty");
    assert.equal(await client.command("QUIT"), "+OK Petrel POP3 server signing off (maildrop empty)");
  });

  test("APOP works for a user with an APOP secret; others fail like a wrong password", async () => {
    const a = await RawPop3.open(h.port);
    const stamp = /<[^>]+>/.exec(a.greeting)![0];
    assert.equal(await a.client.command(`APOP bob@example.test ${apopDigest(stamp, "wrong")}`), "-ERR [AUTH] invalid user name or password");
    assert.equal(await a.client.command(`APOP BOB@example.test ${apopDigest(stamp, "bob pw")}`), "+OK bob@example.test has 0 messages (0 octets)");
    assert.equal(await a.client.command("QUIT"), "+OK Petrel POP3 server signing off (maildrop empty)");

    const b = await RawPop3.open(h.port);
    const stampB = /<[^>]+>/.exec(b.greeting)![0];
    assert.equal(await b.client.command(`APOP bob@example.test ${apopDigest(stamp, "bob pw")}`), "-ERR [AUTH] invalid user name or password", "an old timestamp's digest does not work");
    assert.equal(await b.client.command(`APOP alice@example.test ${apopDigest(stampB, "secret")}`), "-ERR [AUTH] invalid user name or password", "no APOP secret");
    assert.equal(
      await b.client.command(`APOP nobody@example.test ${apopDigest(stampB, "x")}`),
      "-ERR [AUTH] invalid user name or password; too many failures, closing connection",
      "the third failure (max_auth_failures = 3) ends the session",
    );
    await b.client.waitClosed();
  });

  test("AUTH PLAIN with an initial response, after a challenge, cancelled, and unknown mechanisms", async () => {
    const plain = (s: string) => Buffer.from(s).toString("base64");
    const a = await RawPop3.open(h.port);
    assert.equal(await a.client.command("AUTH CRAM-MD5"), "-ERR unsupported authentication mechanism, use PLAIN");
    assert.equal(await a.client.command("AUTH PLAIN"), "+ ");
    assert.equal(await a.client.command("*"), "-ERR authentication cancelled");
    assert.equal(await a.client.command("AUTH PLAIN"), "+ ");
    assert.equal(await a.client.command(plain("\0alice@example.test\0wrong")), "-ERR [AUTH] invalid user name or password");
    assert.equal(await a.client.command("AUTH PLAIN"), "+ ");
    assert.equal(await a.client.command(plain("\0alice@example.test\0secret")), "+OK alice@example.test has 0 messages (0 octets)");
    assert.equal(await a.client.command("AUTH PLAIN"), "-ERR already logged in");
    assert.equal(await a.client.command("QUIT"), "+OK Petrel POP3 server signing off (maildrop empty)");
    const b = await RawPop3.open(h.port);
    assert.equal(await b.client.command(`AUTH PLAIN ${plain("bob@example.test\0bob@example.test\0bob pw")}`), "+OK bob@example.test has 0 messages (0 octets)");
    b.client.close();
  });
});

describe("Pop3Session limits and endings", () => {
  test("failed logins wait auth_failure_delay and the session closes at max_auth_failures", async () => {
    const h = await startHarness({ authFailureDelayMs: 150, maxAuthFailures: 3 });
    try {
      const { client } = await RawPop3.open(h.port);
      const started = Date.now();
      assert.equal(await client.command("USER alice@example.test"), "+OK send PASS");
      assert.equal(await client.command("PASS nope"), "-ERR [AUTH] invalid user name or password");
      assert.ok(Date.now() - started >= 140, "the answer waited");
      assert.equal(await client.command("USER nobody@example.test"), "+OK send PASS", "USER does not reveal unknown users");
      assert.equal(await client.command("PASS x"), "-ERR [AUTH] invalid user name or password");
      assert.equal(await client.command("APOP alice@example.test 00000000000000000000000000000000"), "-ERR [AUTH] invalid user name or password; too many failures, closing connection");
      await client.waitClosed();
      assert.ok(Date.now() - started >= 440);
      await h.settled();
      const end = h.logs.find((l) => l.msg === "pop3 session")!;
      assert.equal(end.end, "auth-failures");
      assert.equal(end.auth_failures, 3);
      assert.ok(!h.rawLogs.join("").includes("nope"), "passwords are never logged");
    } finally {
      await h.close();
    }
  });

  test("a failed login is answered auth_failure_delay after its check began, however long the check took", async () => {
    const h = await startHarness({ authFailureDelayMs: 400, maxAuthFailures: 5 });
    try {
      const { client } = await RawPop3.open(h.port);
      for (const user of ["slow@example.test", "alice@example.test"]) {
        assert.equal(await client.command(`USER ${user}`), "+OK send PASS");
        const t0 = Date.now();
        assert.equal(await client.command("PASS nope"), "-ERR [AUTH] invalid user name or password");
        const took = Date.now() - t0;
        assert.ok(took >= 390 && took < 550, `${user}: answered after ${took} ms (a delay after the check would be 600)`);
      }
    } finally {
      await h.close();
    }
  });

  test("a second session for a locked maildrop gets [IN-USE] and stays in AUTHORIZATION", async () => {
    const h = await startHarness();
    try {
      const first = await login(h);
      const { client: second } = await RawPop3.open(h.port);
      assert.equal(await second.command("USER alice@example.test"), "+OK send PASS");
      assert.equal(await second.command("PASS secret"), "-ERR [IN-USE] maildrop is locked by another session, try again later");
      assert.equal(await second.command("STAT"), "-ERR not logged in yet: use USER and PASS, or APOP, first");
      assert.equal(await second.command("PASS secret"), "-ERR send USER first");
      const other = await login(h, "bob@example.test", "bob pw"); // other maildrops are not affected
      other.close();
      assert.match(await first.command("QUIT"), /^\+OK/);
      await first.waitClosed();
      assert.equal(await second.command("USER alice@example.test"), "+OK send PASS");
      assert.match(await second.command("PASS secret"), /^\+OK alice@example\.test has/, "the lock is free after QUIT");
      second.close();
      await h.settled();
      assert.equal(h.locks.size, 0, "a dropped connection releases its lock");
    } finally {
      await h.close();
    }
  });

  test("a dropped connection deletes nothing and releases the lock", async () => {
    const h = await startHarness();
    try {
      const name = h.deliver("alice@example.test", "1700000001.M1P1Q1.host", MSG1);
      const client = await login(h);
      assert.equal(await client.command("DELE 1"), "+OK message 1 deleted");
      client.close();
      await h.settled();
      assert.deepEqual(h.files("alice@example.test"), [name]);
      assert.equal(h.locks.isLocked("alice@example.test"), false);
      const end = h.logs.find((l) => l.msg === "pop3 session")!;
      assert.deepEqual([end.end, end.deleted], ["disconnected", 0]);
    } finally {
      await h.close();
    }
  });

  test("an idle session is logged out without UPDATE (RFC 1939 autologout)", async () => {
    const h = await startHarness({ idleTimeoutMs: 300 });
    try {
      const name = h.deliver("alice@example.test", "1700000001.M1P1Q1.host", MSG1);
      const client = await login(h);
      assert.equal(await client.command("DELE 1"), "+OK message 1 deleted");
      assert.equal(await client.line(2000), "-ERR [SYS/TEMP] autologout: idle for too long, closing connection");
      await client.waitClosed();
      await h.settled();
      assert.deepEqual(h.files("alice@example.test"), [name]);
      assert.equal(h.locks.size, 0);
    } finally {
      await h.close();
    }
  });

  test("server shutdown closes idle sessions with [SYS/TEMP] and without UPDATE", async () => {
    const h = await startHarness();
    try {
      const name = h.deliver("alice@example.test", "1700000001.M1P1Q1.host", MSG1);
      const client = await login(h);
      const { client: waiting } = await RawPop3.open(h.port);
      assert.equal(await client.command("DELE 1"), "+OK message 1 deleted");
      for (const s of h.sessions) s.shutdown();
      assert.equal(await client.line(), "-ERR [SYS/TEMP] server shutting down, closing connection");
      assert.equal(await waiting.line(), "-ERR [SYS/TEMP] server shutting down, closing connection");
      await client.waitClosed();
      await waiting.waitClosed();
      await h.settled();
      assert.deepEqual(h.files("alice@example.test"), [name]);
      assert.equal(h.locks.size, 0);
    } finally {
      await h.close();
    }
  });

  test("RETR streams a large message with backpressure: the server never buffers it", async () => {
    const h = await startHarness();
    try {
      const line = "x".repeat(70) + "\n";
      const body = Buffer.from("Subject: big\n\n" + line.repeat(240_000) + ".dot line\n", "latin1"); // ~17 MB
      h.deliver("alice@example.test", "1700000001.M1P1Q1.host", body);
      const client = await login(h);
      client.socket.pause();
      client.write("RETR 1\r\n");
      await new Promise((r) => setTimeout(r, 400));
      const server = h.serverSockets.at(-1)!;
      assert.ok(server.writableLength < 1024 * 1024, `server buffers ${server.writableLength} bytes while the client does not read`);
      client.socket.resume();
      const r = await client.multi(20_000);
      const expected = Buffer.from(body.toString("latin1").replace(/\n/g, "\r\n"), "latin1");
      assert.equal(r.status, `+OK ${expected.length} octets`);
      assert.ok(unstuff(r.body).equals(expected), "byte-exact after unstuffing");
      assert.equal(await client.command("QUIT"), "+OK Petrel POP3 server signing off (1 message left)");
    } finally {
      await h.close();
    }
  });

  test("random input in every state never crashes the session or the server", async () => {
    const h = await startHarness({ maxAuthFailures: 1000 });
    try {
      h.deliver("alice@example.test", "1700000001.M1P1Q1.host", MSG1);
      let seed = 2449;
      const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      const verbs = ["USER", "PASS", "APOP", "AUTH", "STAT", "LIST", "RETR", "TOP", "DELE", "UIDL", "RSET", "NOOP", "CAPA", "", "\x00", "\xff"];
      const word = () => {
        const kind = Math.floor(rand() * 6);
        if (kind === 0) return String(Math.floor(rand() * 5) - 1);
        if (kind === 1) return "9".repeat(1 + Math.floor(rand() * 30));
        if (kind === 2) return Buffer.from(Array.from({ length: Math.floor(rand() * 12) }, () => Math.floor(rand() * 256))).toString("latin1");
        if (kind === 3) return "PLAIN";
        if (kind === 4) return "*";
        return "alice@example.test";
      };
      for (const loggedIn of [false, true]) {
        const client = loggedIn ? await login(h) : (await RawPop3.open(h.port)).client;
        let batch = "";
        for (let i = 0; i < 300; i++) {
          const v = verbs[Math.floor(rand() * verbs.length)]!;
          const args = Array.from({ length: Math.floor(rand() * 3) }, word).join(" ");
          batch += `${v}${args ? " " + args : ""}${rand() < 0.2 ? "\n" : "\r\n"}`;
        }
        client.write(Buffer.from(batch, "latin1"));
        client.write("QUIT\r\n");
        await client.waitClosed(10_000);
      }
      await h.settled();
      assert.ok(!h.logs.some((l) => l.msg === "pop3 session" && l.end === "error"), "no session failed");
      const after = await login(h);
      assert.match(await after.command("STAT"), /^\+OK [01] /, "the server still answers");
      after.close();
    } finally {
      await h.close();
    }
  });

  test("a message that fails while streaming ends the connection and releases the lock", async () => {
    const h = await startHarness();
    try {
      const name = h.deliver("alice@example.test", "1700000001.M1P1Q1.host", MSG1);
      const client = await login(h);
      // Replace the file by a folder of the same name: opening works, reading fails (EISDIR).
      const file = path.join(h.dir, "alice@example.test", "new", name);
      fs.unlinkSync(file);
      fs.mkdirSync(file);
      client.write("RETR 1\r\n");
      assert.equal(await client.line(), `+OK ${MSG1.length} octets`);
      await client.waitClosed();
      await h.settled();
      assert.equal(h.locks.size, 0);
      const end = h.logs.find((l) => l.msg === "pop3 session")!;
      assert.equal(end.end, "error");
    } finally {
      await h.close();
    }
  });
});

describe("Pop3Session STLS and the plaintext-login rule (RFC 2595)", () => {
  let certDir: string;
  let source: TlsContextSource;
  const TAIL = "UIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nEXPIRE NEVER\r\nIMPLEMENTATION Petrel\r\n";
  const TLS_REQUIRED = "-ERR [AUTH] TLS required: use STLS (or port 995) before logging in";
  const ALICE_PLAIN = Buffer.from("\0alice@example.test\0secret").toString("base64");

  before(() => {
    certDir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-pop3-cert-"));
    const cert = makeTestCert(certDir, "pop.test");
    const context = tls.createSecureContext({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key), minVersion: "TLSv1.2" });
    source = { context: () => context };
  });
  after(() => fs.rmSync(certDir, { recursive: true, force: true }));

  /** Sends STLS, runs the client side of the handshake over the same socket, returns a client on TLS. */
  async function stls(client: RawPop3): Promise<RawPop3> {
    assert.equal(await client.command("STLS"), "+OK Begin TLS negotiation");
    return handshake(client);
  }

  async function handshake(client: RawPop3): Promise<RawPop3> {
    const secure = tls.connect({ socket: client.socket, rejectUnauthorized: false, servername: "pop.test" });
    await once(secure, "secureConnect");
    return RawPop3.over(secure);
  }

  test("a remote peer without TLS: CAPA offers STLS but not USER or SASL; USER and AUTH PLAIN get [AUTH] TLS required", async () => {
    const h = await startHarness({}, { tls: source, loopback: false });
    try {
      const { client, greeting } = await RawPop3.open(h.port);
      assert.equal((await client.multiCommand("CAPA")).body.toString(), "TOP\r\nSTLS\r\n" + TAIL);
      assert.equal(await client.command("USER alice@example.test"), TLS_REQUIRED);
      assert.equal(await client.command("PASS secret"), "-ERR send USER first", "USER was refused, so no PASS is taken");
      assert.equal(await client.command(`AUTH PLAIN ${ALICE_PLAIN}`), TLS_REQUIRED);
      assert.equal(await client.command("AUTH PLAIN"), TLS_REQUIRED, "no SASL continuation is offered");
      assert.equal(await client.command("USER alice@example.test"), TLS_REQUIRED);
      // Four refusals and the connection is still open: they are no failed logins (maxAuthFailures is 3).
      assert.equal(await client.command("STAT"), "-ERR not logged in yet: use USER and PASS, or APOP, first");
      // APOP sends a digest, not the secret: allowed without TLS (see commands.ts).
      const stamp = /<[^>]+>/.exec(greeting)![0];
      assert.equal(await client.command(`APOP bob@example.test ${apopDigest(stamp, "bob pw")}`), "+OK bob@example.test has 0 messages (0 octets)");
      assert.equal(await client.command("QUIT"), "+OK Petrel POP3 server signing off (maildrop empty)");
      await client.waitClosed();
      await h.settled();
      const refused = h.logs.filter((l) => l.msg === "pop3 plaintext login refused");
      assert.deepEqual(refused.map((l) => l.verb), ["USER", "AUTH", "AUTH", "USER"]);
      assert.equal(refused[0]!.peer, "192.0.2.7");
      assert.ok(!h.rawLogs.join("").includes(ALICE_PLAIN) && !h.rawLogs.join("").includes("secret"), "no credentials in the log");
      assert.equal(h.logs.find((l) => l.msg === "pop3 session")?.auth_failures, 0);
    } finally {
      await h.close();
    }
  });

  test("STLS: CAPA then lists USER and SASL PLAIN and no STLS, a second STLS is refused, and logins work", async () => {
    const h = await startHarness({}, { tls: source, loopback: false });
    try {
      const { client: plain, greeting } = await RawPop3.open(h.port);
      const client = await stls(plain);
      assert.equal((await client.multiCommand("CAPA")).body.toString(), "TOP\r\nUSER\r\nSASL PLAIN\r\n" + TAIL);
      assert.equal(await client.command("STLS"), "-ERR Command not permitted when TLS active");
      assert.equal(await client.command("USER alice@example.test"), "+OK send PASS");
      assert.equal(await client.command("PASS secret"), "+OK alice@example.test has 0 messages (0 octets)");
      assert.equal(h.connections[0]!.info.auth, "alice@example.test", "a good login is recorded on the connection");
      assert.match(h.connections[0]!.info.tls?.version ?? "", /^TLSv1\.[23]$/);
      assert.equal(await client.command("STLS"), "-ERR STLS is only allowed before login");
      assert.equal(await client.command("QUIT"), "+OK Petrel POP3 server signing off (maildrop empty)");
      await client.waitClosed();

      // AUTH PLAIN after STLS; and the APOP timestamp of the greeting still holds after the handshake.
      const second = await stls((await RawPop3.open(h.port)).client);
      assert.equal(await second.command(`AUTH PLAIN ${ALICE_PLAIN}`), "+OK alice@example.test has 0 messages (0 octets)");
      second.close();
      const { client: third, greeting: g3 } = await RawPop3.open(h.port);
      const apop = await stls(third);
      const stamp = /<[^>]+>/.exec(g3)![0];
      assert.notEqual(g3, greeting);
      assert.equal(await apop.command(`APOP bob@example.test ${apopDigest(stamp, "bob pw")}`), "+OK bob@example.test has 0 messages (0 octets)");
      apop.close();
      await h.settled();
      const started = h.logs.filter((l) => l.msg === "TLS started");
      assert.equal(started.length, 3);
      assert.equal(started[0]!.peer, "192.0.2.7");
      assert.equal(started[0]!.discarded_plaintext, undefined);
      assert.match(String(h.logs.find((l) => l.msg === "pop3 session")?.tls), /^TLSv1\.[23]$/);
    } finally {
      await h.close();
    }
  });

  test("commands pipelined after STLS are discarded, never answered after the handshake (CVE-2011-0411)", async () => {
    const h = await startHarness({}, { tls: source, loopback: false });
    try {
      const { client } = await RawPop3.open(h.port);
      const injected = "CAPA\r\nUSER alice@example.test\r\n";
      client.write("STLS\r\n" + injected);
      assert.equal(await client.line(), "+OK Begin TLS negotiation");
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(client.pending, "", "nothing answered the pipelined plaintext");
      const secure = await handshake(client);
      // Had USER been read, PASS would be taken; had CAPA been answered, its lines would come first.
      assert.equal(await secure.command("PASS secret"), "-ERR send USER first");
      assert.equal(await secure.command("QUIT"), "+OK Petrel POP3 server signing off");
      await secure.waitClosed();
      assert.equal(secure.pending, "");
      await h.settled();
      assert.equal(h.logs.find((l) => l.msg === "TLS started")?.discarded_plaintext, injected.length);
    } finally {
      await h.close();
    }
  });

  test("STLS state rules: not after USER, not after login, not without a certificate", async () => {
    const h = await startHarness({}, { tls: source });
    try {
      const { client } = await RawPop3.open(h.port);
      assert.equal(await client.command("USER alice@example.test"), "+OK send PASS");
      assert.equal(await client.command("STLS"), "-ERR STLS must come before USER");
      assert.equal(await client.command("STLS x"), "-ERR STLS must come before USER");
      assert.equal(await client.command("PASS secret"), "+OK alice@example.test has 0 messages (0 octets)", "the session went on in plaintext (loopback)");
      assert.equal(await client.command("STLS"), "-ERR STLS is only allowed before login");
      assert.equal(await client.command("QUIT"), "+OK Petrel POP3 server signing off (maildrop empty)");
      const other = await RawPop3.open(h.port);
      assert.equal(await other.client.command("STLS now"), "-ERR bad arguments, usage: STLS");
      other.client.close();
    } finally {
      await h.close();
    }
    const bare = await startHarness();
    try {
      const { client } = await RawPop3.open(bare.port);
      assert.equal(await client.command("STLS"), "-ERR TLS is not available on this server");
      assert.equal(await client.command("USER alice@example.test"), "+OK send PASS", "still in plaintext, still usable on loopback");
      client.close();
    } finally {
      await bare.close();
    }
  });

  test("pop3.plaintext_login: never refuses even loopback until STLS; always lets a remote peer log in without TLS", async () => {
    const never = await startHarness({ plaintextLogin: "never" }, { tls: source });
    try {
      const { client } = await RawPop3.open(never.port);
      assert.equal((await client.multiCommand("CAPA")).body.toString(), "TOP\r\nSTLS\r\n" + TAIL);
      assert.equal(await client.command("USER alice@example.test"), TLS_REQUIRED);
      const secure = await stls(client);
      assert.equal(await secure.command("USER alice@example.test"), "+OK send PASS");
      assert.equal(await secure.command("PASS secret"), "+OK alice@example.test has 0 messages (0 octets)");
      secure.close();
    } finally {
      await never.close();
    }
    const always = await startHarness({ plaintextLogin: "always" }, { loopback: false });
    try {
      const { client } = await RawPop3.open(always.port);
      assert.equal((await client.multiCommand("CAPA")).body.toString(), "TOP\r\nUSER\r\nSASL PLAIN\r\n" + TAIL);
      assert.equal(await client.command(`AUTH PLAIN ${ALICE_PLAIN}`), "+OK alice@example.test has 0 messages (0 octets)");
      client.close();
    } finally {
      await always.close();
    }
    const noCert = await startHarness({ plaintextLogin: "never" });
    try {
      const { client } = await RawPop3.open(noCert.port);
      assert.equal(await client.command("USER alice@example.test"), "-ERR [AUTH] login without TLS is not allowed on this connection");
      client.close();
    } finally {
      await noCert.close();
    }
  });

  test("a failed handshake after STLS is logged and ends the connection", async () => {
    const h = await startHarness({}, { tls: source, loopback: false });
    try {
      const { client } = await RawPop3.open(h.port);
      assert.equal(await client.command("STLS"), "+OK Begin TLS negotiation");
      client.write("USER alice@example.test\r\nPASS secret\r\n");
      await client.waitClosed();
      assert.equal(client.pending, "", "no reply in plaintext after +OK");
      await h.settled();
      const failed = h.logs.find((l) => l.msg === "TLS handshake failed");
      assert.ok(failed, "the failure is logged");
      assert.equal(failed.peer, "192.0.2.7");
      assert.equal(h.logs.find((l) => l.msg === "pop3 session")?.end, "tls-failed");
      assert.ok(!h.rawLogs.join("").includes("secret"));
    } finally {
      await h.close();
    }
  });
});
