// Property tests (fast-check) of SMTP's parsers and state machine: MAIL/RCPT argument parsing and
// parsePath never throw and round-trip what they accept; an SmtpSession (fake policy and store, a
// loopback socket) driven by random command sequences answers every command line with exactly one
// well-formed reply and never fails internally. Seeded and bounded, so failures reproduce.
import { Connection } from "../protocol/connection.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import fc from "fast-check";
import { formatAddress, parsePath, type Address } from "../core/address.js";
import { silentLogger } from "../core/log.js";
import { reply } from "../core/reply.js";
import type { Envelope, IncomingMessage } from "../spool/spool.js";
import { SocketText } from "../testing/socket-text.js";
import { isReply, parseMailArgs } from "./mail-args.js";
import { SmtpSession, type SmtpSessionOptions } from "./session.js";

const SEED = 11;

test("parseMailArgs never throws: a 501 reply or a bracketed path with upper-case keywords", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), fc.constantFrom("FROM:" as const, "TO:" as const), (text, prefix) => {
      for (const arg of [text, `${prefix}${text}`, `${prefix}<${text}`]) {
        const r = parseMailArgs(arg, prefix);
        if (isReply(r)) assert.equal(r.code, 501);
        else {
          assert.ok(r.path.startsWith("<") && r.path.endsWith(">"), r.path);
          for (const key of r.params.keys()) assert.match(key, /^[A-Z0-9][A-Z0-9-]*$/);
        }
      }
    }),
    { seed: SEED, numRuns: 500 },
  );
});

const atom = fc.stringMatching(/^[a-z0-9!#$%&'*+\-/=?^_`{|}~]{1,10}$/);
const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?$/);
const address = fc.record({
  local: fc.array(atom, { minLength: 1, maxLength: 3 }).map((a) => a.join(".")),
  domain: fc.array(label, { minLength: 1, maxLength: 3 }).map((a) => a.join(".")),
});
const params = fc.uniqueArray(fc.tuple(fc.stringMatching(/^[A-Z][A-Z0-9-]{0,8}$/), fc.option(fc.stringMatching(/^[!-<>-~]{1,12}$/), { nil: null })), {
  selector: ([k]) => k,
  maxLength: 4,
});

test("MAIL FROM and RCPT TO round-trip any valid path and parameters; parsePath gives the address back", () => {
  fc.assert(
    fc.property(address, params, fc.boolean(), (a, ps, space) => {
      const text = `FROM:${space ? " " : ""}<${formatAddress(a)}>${ps.map(([k, v]) => ` ${k}${v === null ? "" : "=" + v}`).join("")}`;
      const r = parseMailArgs(text, "FROM:");
      assert.ok(!isReply(r), JSON.stringify(r));
      assert.equal(r.path, `<${formatAddress(a)}>`);
      assert.deepEqual([...r.params], ps);
      assert.deepEqual(parsePath(r.path), { local: a.local, domain: a.domain });
    }),
    { seed: SEED, numRuns: 300 },
  );
});

test("parsePath never throws, and what it accepts formats and parses back to itself", () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 60 }), fc.string({ maxLength: 60 }).map((s) => `<${s}>`), address.map((a) => `<@relay.test:${formatAddress(a)}>`)), (text) => {
      const p = parsePath(text);
      if (p === null || p === "null-path") return;
      assert.deepEqual(parsePath(`<${formatAddress(p)}>`), p);
    }),
    { seed: SEED, numRuns: 500 },
  );
});

// ---- the session state machine ----

const OPTIONS: SmtpSessionOptions = {
  hostname: "mx.test",
  maxMessageSize: 200,
  maxRecipients: 3,
  maxErrors: 1000,
  maxJunkCommands: 1000,
  maxExpandedRecipients: 100,
  commandTimeoutMs: 5000,
  dataTimeoutMs: 5000,
  bareLineEndings: "normalize",
  postmasterDomain: "local.test",
};

const policy = {
  checkRecipient: (a: Address) =>
    a.domain === "local.test" && a.local !== "nobody"
      ? { reply: reply(250, "2.1.5", "Ok"), route: { local: [formatAddress(a)], remote: [] } }
      : { reply: reply(550, "5.1.1", "User unknown") },
  vrfy: () => reply(252, "2.5.2", "Cannot VRFY user"),
  expn: () => reply(250, "2.1.5", "<a@local.test>", "<b@local.test>"),
};

const store = {
  async open(_env: Envelope) {
    return {
      async write() {},
      async commit() {},
      async abort() {},
    } as unknown as IncomingMessage;
  },
};

/** One client step: a command line, and for BDAT the chunk that follows it in the same write. */
interface Step {
  readonly line: Buffer;
  readonly chunk?: Buffer;
}

const text = (s: string): Step => ({ line: Buffer.from(s, "utf8") });
const noLineEnds = (b: Uint8Array) => Buffer.from(b.filter((c) => c !== 10 && c !== 13));
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("EHLO c", "HELO c", "MAIL FROM:<a@x.test>", "MAIL FROM:<> SIZE=10 BODY=8BITMIME SMTPUTF8", "RCPT TO:<b@local.test>", "RCPT TO:<nobody@local.test>", "RCPT TO:<Postmaster>", "DATA", "RSET", "NOOP", "HELP", "HELP MAIL", "VRFY b", "EXPN list", "TURN", "MAIL FROM:<a@x.test> SIZE=999999").map(text) },
  { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 0, max: 300 }), fc.boolean()).map(([n, last]) => ({ line: Buffer.from(`BDAT ${n}${last ? " LAST" : ""}`), chunk: Buffer.alloc(n, 0x61) })) },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom("EHLO", "HELO", "MAIL", "RCPT", "MAIL FROM:", "RCPT TO:", "VRFY", "BDAT", "HELP", ""), fc.string({ maxLength: 40 })).map(([v, s]) => text(`${v}${s.replace(/[\r\n]/g, "")}`)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((b) => ({ line: noLineEnds(b) })) },
);

/** Reads one complete reply (RFC 5321 §4.2); its lines, or null once the server has closed. */
async function nextReply(text: SocketText): Promise<string[] | null> {
  const raw = await text.take((t) => {
    const m = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(t);
    return m ? m[0].length : -1;
  });
  if (raw === null) assert.equal(text.pending, "", "bytes that are not a complete reply");
  return raw === null ? null : raw.split("\r\n").slice(0, -1);
}

function checkWellFormed(lines: readonly string[]): void {
  const code = lines.at(-1)!.slice(0, 3);
  lines.forEach((l, i) => {
    assert.match(l, i === lines.length - 1 ? /^\d{3}( [\x20-\x7e]*)?$/ : /^\d{3}-[\x20-\x7e]*$/, JSON.stringify(lines));
    assert.equal(l.slice(0, 3), code, "one code per reply");
  });
  assert.ok(!lines.some((l) => l.includes("internal error")), `the session failed: ${JSON.stringify(lines)}`);
}

test("an SmtpSession answers every command of a random sequence with exactly one well-formed reply", async () => {
  const failures: unknown[] = [];
  const server = net.createServer((sock) => {
    new SmtpSession(new Connection(sock, { listener: "smtp" }), { options: OPTIONS, policy, store, log: silentLogger(), newId: () => "ID" }).run().catch((err) => failures.push(err));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 25 }), async (steps) => {
        const sock = net.connect(port, "127.0.0.1");
        sock.on("error", () => undefined);
        const replies = new SocketText(sock);
        try {
          checkWellFormed((await nextReply(replies))!);
          let open = true;
          for (const s of steps) {
            sock.write(s.chunk ? Buffer.concat([s.line, Buffer.from("\r\n"), s.chunk]) : Buffer.concat([s.line, Buffer.from("\r\n")]));
            let r = await nextReply(replies);
            assert.ok(r, `no reply to ${JSON.stringify(s.line.toString("latin1"))}`);
            checkWellFormed(r);
            if (r[0]!.startsWith("354")) {
              sock.write("Subject: fuzz\r\n\r\n..body\r\n.\r\n");
              r = await nextReply(replies);
              assert.ok(r, "no reply after the data");
              checkWellFormed(r);
            }
            const code = r.at(-1)!.slice(0, 3);
            if (code === "221" || code === "421" || code === "554" && r.at(-1)!.includes("5.5.0")) {
              assert.equal(await nextReply(replies), null, "the session closes after its last word");
              open = false;
              break;
            }
          }
          if (open) {
            sock.write("QUIT\r\n");
            assert.deepEqual(await nextReply(replies), ["221 2.0.0 Bye"], "QUIT's reply is the next one: no command got two");
          }
        } finally {
          sock.destroy();
        }
      }),
      { seed: SEED, numRuns: 60 },
    );
  } finally {
    server.close();
  }
  assert.deepEqual(failures, []);
});
