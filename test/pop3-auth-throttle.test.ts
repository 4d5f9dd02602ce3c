// Login cost and guessing (issue 7, item 5), end to end against the real server: the per-account
// and per-IP failure throttles (connections from several 127.0.0.x addresses), the [SYS/TEMP] reply
// that RFC 3206 gives a login refused without checking, and SMTP delivery staying fast while 100
// connections guess POP3 passwords (scrypt runs in a worker, not on libuv's pool that fsync uses).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { RawPop3 } from "./helpers/pop3-client.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { RawSmtp } from "./helpers/smtp-client.js";

const USERS = [
  ["alice@localhost", "alice-pw"],
  ["bob@localhost", "bob-pw"],
] as const;

async function login(server: TestServer, from: string, user: string, password: string): Promise<string> {
  const { client } = await RawPop3.open(server.pop3Port!, from);
  try {
    assert.match(await client.command(`USER ${user}`), /^\+OK/);
    return await client.command(`PASS ${password}`);
  } finally {
    client.close();
  }
}

describe("login failure throttle", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      users: [...USERS, ["carol@localhost", "carol-pw"]],
      toml: "[limits]\nauth_failures_per_account = 3\nauth_failures_per_ip = 5\nauth_failure_window = 600\n[pop3]\nauth_failure_delay = 0\n",
    });
  });
  after(() => server.stop());

  test("per account: three failures from three IPs hold the account back, even for the right password from a fourth", async () => {
    for (const ip of ["127.0.0.2", "127.0.0.3", "127.0.0.4"])
      assert.equal(await login(server, ip, "alice@localhost", "wrong"), "-ERR [AUTH] invalid user name or password");
    const t0 = Date.now();
    assert.equal(await login(server, "127.0.0.5", "alice@localhost", "alice-pw"), "-ERR [SYS/TEMP] too many failed logins, try again later");
    assert.equal(await login(server, "127.0.0.5", "ALICE@localhost", "alice-pw"), "-ERR [SYS/TEMP] too many failed logins, try again later");
    assert.ok(Date.now() - t0 < 2000);
    // Another account from the same IP is not affected.
    assert.match(await login(server, "127.0.0.5", "bob@localhost", "bob-pw"), /^\+OK bob@localhost has /);
    const refused = server.logLines().filter((l) => l.msg === "pop3 authentication failed" && l.result === "throttled-account");
    assert.equal(refused.length, 2);
    assert.equal(refused[0]!.user, "alice@localhost");
    assert.equal(refused[0]!.peer, "127.0.0.5");
  });

  test("per IP: five failures from one IP on different accounts hold that IP back; other IPs log in", async () => {
    for (const [i, user] of ["x1@localhost", "x2@localhost", "x3@localhost", "x4@localhost", "x5@localhost"].entries())
      assert.equal(await login(server, "127.0.0.9", user, `guess${i}`), "-ERR [AUTH] invalid user name or password");
    assert.equal(await login(server, "127.0.0.9", "carol@localhost", "carol-pw"), "-ERR [SYS/TEMP] too many failed logins, try again later");
    assert.match(await login(server, "127.0.0.10", "carol@localhost", "carol-pw"), /^\+OK carol@localhost has /);
    assert.ok(server.logLines().some((l) => l.msg === "pop3 authentication failed" && l.result === "throttled-ip" && l.peer === "127.0.0.9"));
  });

  test("a Unicode look-alike (U+212A KELVIN SIGN) is not the ASCII account", async () => {
    assert.equal(await login(server, "127.0.0.20", "\u212Aarol@localhost", "carol-pw"), "-ERR [AUTH] invalid user name or password");
  });
});

/** Times one SMTP delivery from connect to the 250 after DATA. */
async function deliveryMs(server: TestServer, n: number): Promise<number> {
  const t0 = performance.now();
  const c = await RawSmtp.connect(server.smtpPort);
  try {
    assert.equal((await c.reply(60_000)).code, 220);
    // PIPELINING is offered in the EHLO answer: wait for it before pipelining (RFC 2920 §3.1).
    c.write("EHLO client.test\r\n");
    assert.equal((await c.reply(60_000)).code, 250);
    c.write(`MAIL FROM:<s@client.test>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n`);
    for (const code of [250, 250, 354]) assert.equal((await c.reply(60_000)).code, code);
    c.write(`Subject: latency ${n}\r\n\r\nhello\r\n.\r\n`);
    assert.equal((await c.reply(60_000)).code, 250);
  } finally {
    c.close();
  }
  return performance.now() - t0;
}

describe("login cost does not starve delivery", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      users: USERS,
      // Throttles and the POP3 command allowance off, so every guess really costs a scrypt: this
      // measures isolation, not the throttle.
      toml: "[limits]\nmax_connections = 300\nmax_junk_commands = 1000000\nauth_failures_per_account = 1000000\nauth_failures_per_ip = 1000000\n[pop3]\nauth_failure_delay = 0\nmax_auth_failures = 1000000\n",
    });
  });
  after(() => server.stop());

  test("100 connections guessing POP3 passwords leave SMTP delivery latency in milliseconds", async (t) => {
    let stop = false;
    let guesses = 0;
    let busy = 0;
    const guessers = Array.from({ length: 100 }, async (_, i) => {
      const { client } = await RawPop3.open(server.pop3Port!);
      try {
        assert.match(await client.command("USER alice@localhost"), /^\+OK/);
        while (!stop) {
          client.write(`PASS guess-${i}-${guesses}\r\n`);
          const r = await client.line(60_000);
          if (r.includes("server busy")) busy++;
          else assert.equal(r, "-ERR [AUTH] invalid user name or password");
          guesses++;
          client.write("USER alice@localhost\r\n");
          assert.match(await client.line(60_000), /^\+OK/);
        }
      } finally {
        client.close();
      }
    });
    await new Promise((r) => setTimeout(r, 1000)); // let the guessing reach full speed
    const times: number[] = [];
    for (let n = 0; n < 10; n++) times.push(await deliveryMs(server, n));
    stop = true;
    await Promise.all(guessers);
    times.sort((a, b) => a - b);
    const median = times[5]!;
    const max = times[9]!;
    t.diagnostic(`guesses=${guesses} busy=${busy} delivery ms: median=${median.toFixed(0)} max=${max.toFixed(0)} all=${times.map((x) => x.toFixed(0)).join(",")}`);
    assert.ok(guesses > 20, `the guessers ran (${guesses} guesses)`);
    // On main (scrypt on libuv's pool): 3-20 s per delivery. Bounds are loose for a shared CI machine.
    assert.ok(median < 1000, `median delivery ${median.toFixed(0)} ms`);
    assert.ok(max < 3000, `slowest delivery ${max.toFixed(0)} ms`);
  });
});
