// Property tests (fast-check) of POP3's argument splitting and state machine: splitArgs respects
// every row's arity, and a Pop3Session (fake accounts, a temporary Maildrop, a loopback socket)
// driven by random command sequences answers every line with exactly one well-formed response
// (single-line, or multi-line ending in ".") and never fails internally. Seeded and bounded.
import { Connection } from "../protocol/connection.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { silentLogger } from "../core/log.js";
import { SocketText } from "../testing/socket-text.js";
import { ApopTimestamps } from "../auth/apop.js";
import { COMMANDS, splitArgs } from "./commands.js";
import { Maildrop } from "./maildrop.js";
import { MaildropLocks } from "./maildrop-locks.js";
import { Pop3Session } from "./session.js";

const SEED = 13;

test("splitArgs never throws and returns only argument lists that fit the row's arity", () => {
  fc.assert(
    fc.property(fc.constantFrom(...COMMANDS.values()), fc.string({ maxLength: 40 }), (row, rest) => {
      const args = splitArgs(row, rest);
      if (args === null) return;
      if (row.args === "rest") assert.deepEqual(args, [rest]);
      else {
        assert.ok(args.length >= row.args.min && args.length <= row.args.max);
        for (const a of args) assert.ok(a !== "" && !a.includes(" "));
      }
    }),
    { seed: SEED, numRuns: 500 },
  );
});

const MULTI = new Set(["CAPA", "RETR", "TOP"]);

/** A status line (without CRLF), or null once the server has closed. */
const status = (text: SocketText) => text.take((t) => t.indexOf("\r\n"), 2);

/** Skips a multi-line body up to and including its ".CRLF". */
async function skipBody(text: SocketText): Promise<void> {
  const body = await text.take((t) => (t.startsWith(".\r\n") ? 0 : t.indexOf("\r\n.\r\n") >= 0 ? t.indexOf("\r\n.\r\n") + 2 : -1), 3);
  assert.notEqual(body, null, "the connection closed inside a multi-line response");
}

const command = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("USER alice@example.test", "PASS secret", "PASS wrong", "USER bob", "APOP alice@example.test 0123456789abcdef0123456789abcdef", "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=", "AUTH PLAIN", "AUTH LOGIN", "CAPA", "STAT", "LIST", "LIST 1", "LIST 9", "UIDL", "UIDL 2", "RETR 1", "RETR 3", "TOP 2 0", "TOP 1 5", "DELE 1", "DELE 2", "RSET", "NOOP", "STLS") },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom("USER", "PASS", "LIST", "UIDL", "RETR", "TOP", "DELE", "APOP", "AUTH", "STLS", ""), fc.string({ maxLength: 30 })).map(([v, s]) => `${v} ${s}`.replace(/[\r\n]/g, "")) },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, "")) },
);

function expectsBody(line: string): boolean {
  const [verb, ...args] = line.split(" ").filter((w) => w !== "");
  const v = (verb ?? "").toUpperCase();
  return MULTI.has(v) || ((v === "LIST" || v === "UIDL") && args.length === 0);
}

test("a Pop3Session answers every command of a random sequence with exactly one well-formed response", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-pop3-fuzz-"));
  const root = path.join(dir, "alice");
  const fill = () => {
    for (const d of ["tmp", "new", "cur"]) fs.mkdirSync(path.join(root, d), { recursive: true });
    for (let i = 1; i <= 3; i++) {
      const body = `Subject: m${i}\n\n.line\nbody ${i}\n`;
      fs.writeFileSync(path.join(root, "new", `170000000${i}.M${i}P1.test,S=${body.length},W=${body.length + 4}`), body);
    }
  };
  const failures: unknown[] = [];
  const server = net.createServer((sock) => {
    sock.on("error", () => undefined);
    new Pop3Session(new Connection(sock, { listener: "pop3" }), {
      options: { hostname: "pop.test", idleTimeoutMs: 5000, maxAuthFailures: 1000, authFailureDelayMs: 0 },
      accounts: {
        password: async (_peer, a, p) => (a.toLowerCase() === "alice@example.test" && p === "secret" ? { kind: "ok", user: "alice@example.test" } : { kind: "failed", user: a }),
        apop: (_peer, a) => ({ kind: "failed", user: a }),
      },
      locks: new MaildropLocks(),
      timestamps: new ApopTimestamps("pop.test"),
      openMaildrop: () => Maildrop.open(root),
      log: silentLogger(),
    })
      .run()
      .catch((err) => failures.push(err))
      .finally(() => sock.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const wellFormed = (s: string | null, after: string) => {
    assert.ok(s !== null, `no response to ${JSON.stringify(after)}`);
    assert.match(s, /^(\+OK|-ERR)( [\x20-\x7e]*)?$/, `${JSON.stringify(after)} -> ${JSON.stringify(s)}`);
    assert.ok(!s.includes("internal error"), s);
    return s;
  };
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 25 }), async (lines) => {
        fill();
        const sock = net.connect(port, "127.0.0.1");
        sock.on("error", () => undefined);
        const r = new SocketText(sock);
        try {
          wellFormed(await status(r), "(greeting)");
          for (const line of lines) {
            sock.write(line + "\r\n");
            let s = await status(r);
            if (s === "+ ") {
              sock.write("*\r\n"); // AUTH PLAIN's continuation: cancel it
              s = await status(r);
            }
            s = wellFormed(s, line);
            if (s.startsWith("+OK") && expectsBody(line)) await skipBody(r);
          }
          sock.write("QUIT\r\n");
          const bye = wellFormed(await status(r), "QUIT");
          assert.ok(bye.startsWith("+OK"), `QUIT's response is the next one: ${bye}`);
          assert.equal(r.pending, "");
        } finally {
          sock.destroy();
        }
      }),
      { seed: SEED, numRuns: 50 },
    );
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(failures, []);
});
