// Tests of the rspamd check: against a fake HTTP server for every action rspamd can answer, for what Petrel
// sends (headers, the message streamed with its Content-Length), and for rspamd failing (refused, HTTP error,
// garbage, a silent server); then against a real rspamd (Debian package) started once for this file:
// GTUBE is rejected, a normal message passes, a stopped rspamd leaves the message accepted and tagged.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type net from "node:net";
import { Readable } from "node:stream";
import { pino } from "pino";
import { silentLogger } from "../core/log.js";
import { startRspamd, rspamdInstalled, type RspamdServer } from "../testing/rspamd-server.js";
import type { CheckContext, CheckResult, StagedMessage } from "../trust/message-check.js";
import { createRspamdCheck, parseAnswer } from "./rspamd-check.js";

const CTX: CheckContext = {
  id: "QID123",
  peerAddress: "192.0.2.7",
  helo: "client.example.org",
  ptrName: "mail.example.org",
  receivedFrom: "from client.example.org (mail.example.org [192.0.2.7])",
  sender: "alice@example.org",
  recipients: ["bob@example.test", "carol@example.test"],
  authenticated: false,
  tls: false,
};

const HAM = "From: alice@example.org\r\nTo: bob@example.test\r\nSubject: lunch\r\n\r\nShall we meet at noon?\r\n";
const GTUBE = "From: alice@example.org\r\nTo: bob@example.test\r\nSubject: test\r\n\r\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";

function staged(text: string): StagedMessage {
  const bytes = Buffer.from(text);
  return { size: bytes.length, open: () => Readable.from([bytes.subarray(0, 10), bytes.subarray(10)]) };
}

async function run(url: string, text: string, timeoutMs = 2000, ctx: CheckContext = CTX): Promise<CheckResult> {
  const run = createRspamdCheck({ url, timeoutMs, log: silentLogger() }).start(ctx);
  assert.ok(run);
  run.write(Buffer.from(text));
  return run.finish(staged(text));
}

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly body: string;
}

/** An HTTP server answering every request with `answer(seen)`; records what it received. */
async function fakeRspamd(answer: (seen: Seen, res: http.ServerResponse) => void): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const pieces: Buffer[] = [];
    req.on("data", (c: Buffer) => pieces.push(c));
    req.on("end", () => {
      const s = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(pieces).toString("utf8") };
      seen.push(s);
      answer(s, res);
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const json = (o: unknown) => (_s: Seen, res: http.ServerResponse) => {
  res.writeHead(200, { "Content-Type": "application/json" });
  res.end(JSON.stringify(o));
};

describe("rspamd check against a fake rspamd", () => {
  test("sends the message to /checkv2 with IP, Helo, From, one Rcpt per recipient, Queue-Id and Hostname", async () => {
    const fake = await fakeRspamd(json({ action: "no action", score: 1.5, required_score: 15 }));
    try {
      const r = await run(`${fake.url}/`, HAM);
      assert.equal(fake.seen.length, 1);
      const s = fake.seen[0]!;
      assert.equal(s.method, "POST");
      assert.equal(s.url, "/checkv2");
      assert.equal(s.body, HAM);
      assert.equal(s.headers["content-length"], String(Buffer.byteLength(HAM)));
      assert.equal(s.headers["ip"], "192.0.2.7");
      assert.equal(s.headers["helo"], "client.example.org");
      assert.equal(s.headers["from"], "alice@example.org");
      assert.equal(s.headers["queue-id"], "QID123");
      assert.equal(s.headers["hostname"], "mail.example.org");
      const rcpts = s.rawHeaders.filter((_, i) => i % 2 === 1 && s.rawHeaders[i - 1]!.toLowerCase() === "rcpt");
      assert.deepEqual(rcpts, ["bob@example.test", "carol@example.test"]);
      assert.deepEqual(r.verdict, { kind: "accept" });
      assert.deepEqual(r.headers, ["X-Spam-Status: No, score=1.50 required=15.00 engine=rspamd\r\n", "X-Spam-Score: 1.50\r\n"]);
    } finally {
      await fake.close();
    }
  });

  test("a path prefix in the URL is kept; without a PTR name no Hostname header is sent", async () => {
    const fake = await fakeRspamd(json({ action: "no action", score: 0, required_score: 15 }));
    try {
      await run(`${fake.url}/rspamd`, HAM, 2000, { ...CTX, ptrName: null });
      assert.equal(fake.seen[0]!.url, "/rspamd/checkv2");
      assert.equal(fake.seen[0]!.headers["hostname"], undefined);
    } finally {
      await fake.close();
    }
  });

  const cases = [
    { action: "reject", message: undefined, verdict: { kind: "reject", reply: { code: 550, enhanced: "5.7.1", lines: ["Spam message rejected"] } }, status: "Yes" },
    { action: "reject", message: "Gtube pattern", verdict: { kind: "reject", reply: { code: 550, enhanced: "5.7.1", lines: ["Gtube pattern"] } }, status: "Yes" },
    { action: "soft reject", message: undefined, verdict: { kind: "reject", reply: { code: 451, enhanced: "4.7.1", lines: ["Try again later"] } }, status: "No" },
    { action: "greylist", message: undefined, verdict: { kind: "reject", reply: { code: 451, enhanced: "4.7.1", lines: ["Greylisted, try again later"] } }, status: "No" },
    { action: "add header", message: undefined, verdict: { kind: "junk" }, status: "Yes" },
    { action: "rewrite subject", message: undefined, verdict: { kind: "junk" }, status: "Yes" },
    { action: "no action", message: undefined, verdict: { kind: "accept" }, status: "No" },
  ] as const;
  for (const c of cases) {
    test(`action "${c.action}"${c.message ? ` with smtp_message` : ""} → ${c.verdict.kind}${"reply" in c.verdict ? ` ${c.verdict.reply.code}` : ""}`, async () => {
      const fake = await fakeRspamd(json({ action: c.action, score: 7.25, required_score: 15, ...(c.message ? { messages: { smtp_message: c.message } } : {}) }));
      try {
        const r = await run(fake.url, HAM);
        assert.equal(r.verdict.kind, c.verdict.kind);
        if ("reply" in c.verdict) assert.deepEqual(r.verdict.kind === "reject" && r.verdict.reply, c.verdict.reply);
        assert.deepEqual(r.headers, [`X-Spam-Status: ${c.status}, score=7.25 required=15.00 engine=rspamd\r\n`, "X-Spam-Score: 7.25\r\n"]);
      } finally {
        await fake.close();
      }
    });
  }

  test("rspamd's reject text is made printable and bounded before it reaches the reply", async () => {
    const fake = await fakeRspamd(json({ action: "reject", score: 20, required_score: 15, messages: { smtp_message: `bad\r\n250 ok \u00e9${"x".repeat(500)}` } }));
    try {
      const r = await run(fake.url, HAM);
      assert.equal(r.verdict.kind, "reject");
      const line = r.verdict.kind === "reject" ? r.verdict.reply.lines.join("") : "";
      assert.match(line, /^bad\?\?250 ok \?x+\.\.\.$/);
      assert.ok(line.length <= 203);
    } finally {
      await fake.close();
    }
  });

  const failures: [string, (s: Seen, res: http.ServerResponse) => void, RegExp][] = [
    ["HTTP 500", (_s, res) => res.writeHead(500).end("internal error"), /HTTP 500/],
    ["a body that is not JSON", (_s, res) => res.writeHead(200).end("<html>proxy error</html>"), /unreadable answer/],
    ["JSON without an action", json({ score: 3, required_score: 15 }), /unreadable answer/],
    ["an unknown action", json({ action: "discard", score: 3, required_score: 15 }), /unreadable answer/],
    ["a score that is not a number", json({ action: "reject", score: "lots", required_score: 15 }), /unreadable answer/],
    ["an endless answer", (_s, res) => {
      res.writeHead(200);
      const chunk = "x".repeat(64 * 1024);
      for (let i = 0; i < 20; i++) res.write(chunk);
      res.end();
    }, /answer too large/],
  ];
  for (const [what, answer, reason] of failures) {
    test(`${what} → accepted and tagged Unknown`, async () => {
      const fake = await fakeRspamd(answer);
      try {
        const r = await run(fake.url, HAM);
        assert.deepEqual(r.verdict, { kind: "accept" });
        assert.equal(r.headers.length, 1);
        assert.match(r.headers[0]!, /^X-Spam-Status: Unknown, engine=rspamd \(.+\)\r\n$/);
        assert.match(r.headers[0]!, reason);
      } finally {
        await fake.close();
      }
    });
  }

  test("a server that never answers → accepted and tagged after the timeout", async () => {
    const fake = await fakeRspamd(() => undefined);
    try {
      const started = Date.now();
      const r = await run(fake.url, HAM, 300);
      const took = Date.now() - started;
      assert.deepEqual(r.verdict, { kind: "accept" });
      assert.match(r.headers[0]!, /^X-Spam-Status: Unknown, engine=rspamd \(timeout after 300 ms\)\r\n$/);
      assert.ok(took >= 290 && took < 2000, `took ${took} ms`);
    } finally {
      await fake.close();
    }
  });

  test("nothing listening → accepted and tagged (connection refused), and a warning is logged", async () => {
    const fake = await fakeRspamd(json({}));
    const url = fake.url;
    await fake.close();
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const r = await createRspamdCheck({ url, timeoutMs: 2000, log }).start(CTX)!.finish(staged(HAM));
    assert.deepEqual(r.verdict, { kind: "accept" });
    assert.equal(r.headers[0], "X-Spam-Status: Unknown, engine=rspamd (connection refused)\r\n");
    const warning = lines.find((l) => l.msg === "rspamd unavailable: message accepted unchecked");
    assert.ok(warning, JSON.stringify(lines));
    assert.equal(warning.id, "QID123");
    assert.equal(warning.reason, "connection refused");
  });

  test("authenticated submissions are not sent to rspamd", () => {
    const check = createRspamdCheck({ url: "http://127.0.0.1:1", timeoutMs: 100, log: silentLogger() });
    assert.equal(check.start({ ...CTX, authenticated: true }), null);
  });

  test("only http:// URLs are accepted", () => {
    assert.throws(() => createRspamdCheck({ url: "https://127.0.0.1:11333", timeoutMs: 100, log: silentLogger() }), TypeError);
  });

  test("parseAnswer takes rspamd's fields and nothing else", () => {
    assert.deepEqual(parseAnswer('{"action":"reject","score":15,"required_score":15,"messages":{"smtp_message":" Gtube pattern "}}'), {
      action: "reject",
      score: 15,
      requiredScore: 15,
      smtpMessage: "Gtube pattern",
    });
    assert.equal(parseAnswer("null"), null);
    assert.equal(parseAnswer('{"action":"reject","score":1e999,"required_score":15}'), null);
  });
});

describe("rspamd check against a real rspamd", { skip: !rspamdInstalled() && "rspamd is not installed" }, () => {
  let rspamd: RspamdServer;
  before(async () => {
    rspamd = await startRspamd();
    console.log(`# rspamd started in ${rspamd.startupMs} ms`);
  });
  after(() => rspamd?.stop());

  test("GTUBE is rejected 550 5.7.1 with rspamd's text", async () => {
    const r = await run(rspamd.url, GTUBE);
    assert.deepEqual(r.verdict, { kind: "reject", reply: { code: 550, enhanced: "5.7.1", lines: ["Gtube pattern"] }, reason: "rspamd: reject, score 15.00" });
    assert.deepEqual(r.headers, ["X-Spam-Status: Yes, score=15.00 required=15.00 engine=rspamd\r\n", "X-Spam-Score: 15.00\r\n"]);
  });

  test("a normal message gets no action", async () => {
    const r = await run(rspamd.url, HAM);
    assert.deepEqual(r.verdict, { kind: "accept" });
    assert.match(r.headers[0]!, /^X-Spam-Status: No, score=\d+\.\d\d required=15\.00 engine=rspamd\r\n$/);
  });

  test("rspamd stopped → the message is accepted and tagged", async () => {
    const url = rspamd.url;
    await rspamd.stop();
    const r = await run(url, GTUBE);
    assert.deepEqual(r.verdict, { kind: "accept" });
    assert.equal(r.headers[0], "X-Spam-Status: Unknown, engine=rspamd (connection refused)\r\n");
  });
});
