// A bounded random-bytes run against the live SMTP and POP3 servers (issue 7): several connections
// send random bytes and random command-like lines for about 6 s, some reading the answers and some
// never reading, reconnecting when closed. Afterwards both servers must be alive, answer a normal
// session correctly, and have RSS near where it started. Seeded: PETREL_FUZZ_SEED=<n> reproduces.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { RawPop3 } from "./helpers/pop3-client.js";
import { MB, rssBytes } from "./helpers/hostile.js";
import { deliverOne } from "./smtp-protocol-helpers.js";
import { prng } from "../src/testing/prng.js";

const SEED = Number(process.env.PETREL_FUZZ_SEED ?? 20261130);
const RUN_MS = 6000;

const SMTP_WORDS = ["EHLO x", "HELO x", "MAIL FROM:<a@remote.test>", "MAIL FROM:<> SMTPUTF8", "RCPT TO:<alice@localhost>", "RCPT TO:<nobody@localhost>", "DATA", "BDAT 10", "BDAT 5 LAST", "RSET", "NOOP", "VRFY alice", "EXPN team@localhost", "HELP", "QUIT", "GET / HTTP/1.1", "STARTTLS", "AUTH PLAIN"];
const POP3_WORDS = ["USER alice@localhost", "PASS pw", "PASS nope", "APOP alice@localhost 00", "AUTH PLAIN", "CAPA", "STAT", "LIST", "UIDL", "RETR 1", "TOP 1 0", "DELE 1", "RSET", "NOOP", "QUIT", "LIST 99999999999"];

function randomInput(rnd: () => number, words: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (let n = 1 + Math.floor(rnd() * 8); n > 0; n--) {
    const kind = rnd();
    if (kind < 0.5) parts.push(Buffer.from(words[Math.floor(rnd() * words.length)]! + (rnd() < 0.9 ? "\r\n" : "\n"), "latin1"));
    else if (kind < 0.8) {
      const b = Buffer.alloc(Math.floor(rnd() * 300));
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(rnd() * 256);
      parts.push(b);
    } else {
      // A word followed by random printable junk, sometimes very long.
      const len = rnd() < 0.1 ? 2000 : Math.floor(rnd() * 60);
      let s = words[Math.floor(rnd() * words.length)]! + " ";
      for (let i = 0; i < len; i++) s += String.fromCharCode(32 + Math.floor(rnd() * 95));
      parts.push(Buffer.from(s + "\r\n", "latin1"));
    }
  }
  return Buffer.concat(parts);
}

/** One fuzzing client: connects, sends random input in bursts, reads or not, reconnects when closed. */
async function fuzzClient(port: number, words: readonly string[], rnd: () => number, until: number): Promise<number> {
  let sent = 0;
  while (Date.now() < until) {
    const sock = net.connect(port, "127.0.0.1");
    sock.on("error", () => undefined);
    sock.on("data", () => undefined);
    const closed = new Promise<void>((r) => sock.once("close", () => r()));
    if (rnd() < 0.4) sock.pause(); // this one never reads
    const life = Date.now() + 200 + rnd() * 1500;
    let open = true;
    void closed.then(() => (open = false));
    while (open && Date.now() < Math.min(life, until)) {
      const input = randomInput(rnd, words);
      sent += input.length;
      if (!sock.write(input)) await Promise.race([new Promise((r) => sock.once("drain", r)), closed, new Promise((r) => setTimeout(r, 100))]);
      await new Promise((r) => setTimeout(r, rnd() * 20));
    }
    sock.destroy();
    await closed;
  }
  return sent;
}

describe("random bytes against the live servers", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ users: [["alice@localhost", "pw"]], // Random PASS lines from 127.0.0.1 are failed logins: the per-IP throttle would (rightly) refuse
      // the check login afterwards, so it is lifted here; test/pop3-auth-throttle covers it.
      toml: "[limits]\ncommand_timeout = 5\nauth_failures_per_ip = 1000000\nauth_failures_per_account = 1000000\n[pop3]\nauth_failure_delay = 0\n" });
    server.petrel(["list", "add", "team@localhost", "alice@localhost"]);
  });
  after(async () => {
    await server.stop();
  });

  test(`6 connections of random input for ${RUN_MS / 1000} s (seed ${SEED}): both servers alive, answering, RSS near its start`, async (t) => {
    const pid = server.process.pid!;
    // Warm up first: password checks (scrypt, 16 MB each on libuv's threads) leave their memory to
    // the threads' malloc arenas; that is a fixed cost of logins, not growth under attack.
    for (let round = 0; round < 3; round++)
      await Promise.all(
        Array.from({ length: 12 }, async () => {
          const { client } = await RawPop3.open(server.pop3Port!);
          await client.command("USER alice@localhost");
          await client.command("PASS wrong");
          client.close();
        }),
      );
    const start = rssBytes(pid);
    const until = Date.now() + RUN_MS;
    const runs = [
      ...[0, 1, 2].map((i) => fuzzClient(server.smtpPort, SMTP_WORDS, prng(SEED + 1 + i), until)),
      ...[0, 1, 2].map((i) => fuzzClient(server.pop3Port!, POP3_WORDS, prng(SEED + 11 + i), until)),
    ];
    let peak = start;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 100);
    const sent = (await Promise.all(runs)).reduce((a, b) => a + b, 0);
    clearInterval(sampler);
    assert.equal(server.process.exitCode, null, "the server is alive");
    const end = rssBytes(pid);
    t.diagnostic(`seed ${SEED}: sent ${(sent / MB).toFixed(1)} MB; RSS start ${(start / MB).toFixed(1)} MB, peak ${(peak / MB).toFixed(1)} MB, end ${(end / MB).toFixed(1)} MB`);
    assert.ok(peak - start < 60 * MB, `RSS grew by ${((peak - start) / MB).toFixed(1)} MB`);
    assert.equal(server.logLines().filter((l) => l.msg === "session crashed" || l.msg === "session failed" || l.msg === "pop3 session failed").length, 0, "no session failed internally");

    // A normal SMTP delivery...
    await deliverOne(server.smtpPort, "alice@localhost", "after the fuzz");
    // ...and a normal POP3 session that finds it (the maildrop lock is free once fuzzers are gone).
    let p: RawPop3 | null = null;
    for (const deadline = Date.now() + 5000; !p && Date.now() < deadline; ) {
      const { client } = await RawPop3.open(server.pop3Port!);
      await client.command("USER alice@localhost");
      if ((await client.command("PASS pw")).startsWith("+OK")) p = client;
      else {
        client.close();
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.ok(p, "POP3 login after the fuzz");
    const list = await p.multiCommand("LIST");
    assert.match(list.status, /^\+OK /);
    const n = list.body.toString("latin1").split("\r\n").filter(Boolean).length;
    assert.ok(n >= 1);
    const last = await p.multiCommand(`RETR ${n}`);
    assert.match(last.body.toString("latin1"), /Subject: after the fuzz/);
    assert.match(await p.command("QUIT"), /^\+OK/);
  });
});
