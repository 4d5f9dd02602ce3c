// The SMTP session alone: a real loopback socket, but fake policy and message store, so the
// protocol is tested without SQLite or disk. Transcripts list client lines and expected replies.
import { Connection } from "../protocol/connection.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { formatAddress, type Address } from "../core/address.js";
import { reply } from "../core/reply.js";
import { silentLogger } from "../core/log.js";
import type { Envelope, IncomingMessage } from "../spool/spool.js";
import type { ClientName } from "../spool/trace-headers.js";
import { HeloCheck } from "./helo-check.js";
import { SmtpSession, type QueueControl, type SmtpSessionOptions } from "./session.js";

const options: SmtpSessionOptions = {
  hostname: "mx.test",
  maxMessageSize: 1000,
  maxRecipients: 2,
  maxExpandedRecipients: 100,
  maxErrors: 5,
  maxJunkCommands: 50,
  commandTimeoutMs: 5000,
  dataTimeoutMs: 5000,
  bareLineEndings: "normalize",
  postmasterDomain: "local.test",
};

interface Stored {
  env: Envelope;
  content: Buffer;
  committed: boolean;
}

interface ConverseOptions extends Partial<SmtpSessionOptions> {
  queue?: QueueControl;
  reverseDns?: { lookup(ip: string): Promise<ClientName> };
  readonly firstAlone?: boolean;
}

/** The EHLO answer of the session under test, line by line. */
const ehloReply = (name: string) => [
  `250-mx.test Hello ${name} [127.0.0.1]`,
  "250-PIPELINING",
  "250-SIZE 1000",
  "250-8BITMIME",
  "250-DSN",
  "250-ENHANCEDSTATUSCODES",
  "250-SMTPUTF8",
  "250-CHUNKING",
  "250 HELP",
];
const EHLO_C = ehloReply("c");

async function converse(input: string, opts: ConverseOptions = {}) {
  const stored: Stored[] = [];
  const store = {
    async open(env: Envelope) {
      const s: Stored = { env, content: Buffer.alloc(0), committed: false };
      stored.push(s);
      return {
        async write(pieces: readonly Buffer[]) {
          s.content = Buffer.concat([s.content, ...pieces]);
        },
        async commit() {
          s.committed = true;
        },
        async abort() {},
      } as unknown as IncomingMessage;
    },
  };
  const policy = {
    checkRecipient: (a: Address) =>
      a.domain === "local.test" && a.local !== "nobody"
        ? { reply: reply(250, "2.1.5", "Ok"), route: { local: [formatAddress(a)], remote: [] } }
        : { reply: reply(550, "5.1.1", "User unknown") },
    vrfy: () => reply(252, "2.5.2", "maybe"),
    expn: () => reply(502, "5.5.1", "no"),
  };
  const server = net.createServer((sock) => {
    void new SmtpSession(new Connection(sock, { listener: "smtp" }), { options: { ...options, ...opts }, policy, store, log: silentLogger(), newId: () => "ID1", ...(opts.queue ? { queue: opts.queue } : {}), ...(opts.reverseDns ? { reverseDns: opts.reverseDns } : {}) }).run();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const client = net.connect(port, "127.0.0.1");
  let out = "";
  client.on("data", (d) => (out += d.toString("latin1")));
  await new Promise((r) => client.once("connect", r));
  // The first line goes alone and waits for its reply: a client may pipeline only once EHLO has
  // offered PIPELINING (RFC 2920 §3.1); the tests of unauthorised pipelining pass firstAlone=false.
  const nl = input.indexOf("\n") + 1;
  const firstAlone = opts.firstAlone ?? true;
  client.write(firstAlone ? input.slice(0, nl) : input);
  if (firstAlone && nl < input.length) {
    while (!/^\d{3} [^\r]*\r\n(?:\d{3}-[^\r]*\r\n)*\d{3} [^\r]*\r\n/.test(out)) await new Promise((r) => setTimeout(r, 2));
    client.write(input.slice(nl));
  }
  await new Promise((r) => client.once("close", r));
  server.close();
  return { replies: out.split("\r\n").filter(Boolean), stored };
}

test("a pipelined transaction: replies in order, content unstuffed, envelope passed to the store", async () => {
  const { replies, stored } = await converse(
    "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@local.test>\r\nRCPT TO:<nobody@local.test>\r\nDATA\r\n" +
      "Subject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
  );
  assert.deepEqual(replies, [
    "220 mx.test ESMTP Petrel",
    ...ehloReply("client.test"),
    "250 2.1.0 Ok",
    "250 2.1.5 Ok",
    "550 5.1.1 User unknown",
    "354 End data with <CR><LF>.<CR><LF>",
    "250 2.0.0 Ok: queued as ID1",
    "221 2.0.0 Bye",
  ]);
  assert.equal(stored.length, 1);
  assert.equal(stored[0]!.committed, true);
  assert.equal(stored[0]!.env.sender, "a@x.test");
  assert.deepEqual(stored[0]!.env.recipients.map((r) => r.address), ["b@local.test"]);
  assert.equal(stored[0]!.content.toString(), "Subject: hi\r\n\r\n.dot\r\n");
});

test("sequence errors, limits and the error cap", async () => {
  const { replies } = await converse("MAIL FROM:<a@x.test>\r\nQUIT\r\n");
  assert.deepEqual(replies, ["220 mx.test ESMTP Petrel", "503 5.5.1 Error: send HELO/EHLO first", "221 2.0.0 Bye"]);
  const { replies: more } = await converse(
    "EHLO c\r\nRCPT TO:<b@local.test>\r\nMAIL FROM:<a@x.test> SIZE=5000\r\nMAIL FROM:<a@x.test>\r\nDATA\r\n" +
      "RCPT TO:<b@local.test>\r\nRCPT TO:<c@local.test>\r\nRCPT TO:<d@local.test>\r\nTURN\r\nBOGUS\r\nNOOP\r\n",
  );
  assert.deepEqual(more, [
    "220 mx.test ESMTP Petrel",
    ...EHLO_C,
    "503 5.5.1 Error: need MAIL command",
    "552 5.3.4 Message size exceeds fixed maximum message size",
    "250 2.1.0 Ok",
    "554 5.5.1 Error: no valid recipients",
    "250 2.1.5 Ok",
    "250 2.1.5 Ok",
    "452 4.5.3 Error: too many recipients",
    "502 5.5.1 Error: command not implemented",
    "500 5.5.2 Error: command not recognized",
    "421 4.7.0 mx.test Error: too many errors, closing connection",
  ]);
  void replies;
});

test("a message over the size limit is refused after its end and the session goes on", async () => {
  const { replies, stored } = await converse(
    "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@local.test>\r\nDATA\r\n" + "x".repeat(2000) + "\r\n.\r\nNOOP\r\nQUIT\r\n",
  );
  assert.deepEqual(replies.slice(-4), ["354 End data with <CR><LF>.<CR><LF>", "552 5.3.4 Message size exceeds fixed maximum message size", "250 2.0.0 Ok", "221 2.0.0 Bye"]);
  assert.equal(stored[0]!.committed, false);
});

test("too many NOOP-like commands without a message end the session with 421 4.7.0", async () => {
  const { replies } = await converse("EHLO c\r\n" + "NOOP\r\n".repeat(3) + "RSET\r\nVRFY x\r\n", { maxJunkCommands: 5 });
  assert.deepEqual(replies.slice(1), [
    ...EHLO_C,
    "250 2.0.0 Ok",
    "250 2.0.0 Ok",
    "250 2.0.0 Ok",
    "250 2.0.0 Ok",
    "421 4.7.0 mx.test Error: too many commands without mail, closing connection",
  ]);
});

test("random bytes never crash the session: every line is answered, QUIT still works", async () => {
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const verbs = ["EHLO", "HELO", "MAIL FROM:", "RCPT TO:", "DATA", "BDAT", "VRFY", "EXPN", "RSET", "NOOP", "HELP", ""];
  let input = "";
  let lines = 0;
  for (let i = 0; i < 150; i++) {
    let junk = "";
    for (let j = rnd(40); j > 0; j--) {
      const c = rnd(256);
      if (c !== 10 && c !== 13) junk += String.fromCharCode(c);
    }
    const verb = verbs[rnd(verbs.length)]!;
    if (verb === "DATA" || verb === "BDAT") continue; // would swallow the following lines as content
    // HELO withdraws PIPELINING and a header-like line closes the session: both by design.
    if (verb === "HELO" || /^[A-Za-z][A-Za-z0-9-]*:/.test(verb + junk)) continue;
    input += `${verb}${junk}\r\n`;
    lines++;
  }
  const { replies } = await converse("EHLO c\r\n" + input + "QUIT\r\n", { maxErrors: 1000, maxJunkCommands: 1000 });
  const finals = replies.filter((r) => /^\d{3} /.test(r));
  assert.equal(finals.length, 2 + lines + 1, "greeting + EHLO + one reply per line + QUIT");
  assert.equal(finals.at(-1), "221 2.0.0 Bye");
});

test("a BDAT refused before MAIL still consumes its chunk: the chunk's bytes are never taken for commands", async () => {
  const { replies } = await converse("EHLO c\r\nBDAT 12\r\nNOOP\r\nNOOP\r\nQUIT\r\n");
  assert.deepEqual(replies.slice(1 + EHLO_C.length), ["503 5.5.1 Error: need MAIL command", "221 2.0.0 Bye"]);
});

test("ETRN (RFC 1985): 253 with the count, 251 when nothing waits, 459 for local domains and #queues, 458 when the queue fails, advertised only with a queue", async () => {
  const asked: [string, boolean][] = [];
  const queue: QueueControl = {
    async flush(domain, subdomains) {
      asked.push([domain, subdomains]);
      if (domain === "broken.test") throw new Error("queue unreadable");
      return domain === "far.test" ? 3 : 0;
    },
    isLocalDomain: (d) => d === "local.test",
  };
  const { replies } = await converse("EHLO c\r\nETRN far.test\r\nETRN @Far.Test\r\nETRN empty.test\r\nETRN local.test\r\nETRN #q1\r\nETRN broken.test\r\nETRN\r\nETRN bad_name\r\nMAIL FROM:<a@x.test>\r\nETRN far.test\r\nQUIT\r\n", { queue });
  assert.ok(replies.some((l) => /^250[- ]ETRN$/.test(l)), "advertised in EHLO");
  assert.deepEqual(replies.slice(-11), [
    "253 2.0.0 OK, 3 pending messages for node <far.test> started",
    "253 2.0.0 OK, 3 pending messages for node <far.test> started",
    "251 2.0.0 OK, no messages waiting for node <empty.test>",
    "459 4.7.1 <local.test>: mail for this domain is delivered here, not queued",
    "459 4.7.1 #q1: queue names are not supported",
    "458 4.3.0 Unable to queue messages for node <broken.test>",
    "501 5.5.4 Syntax: ETRN domain",
    "501 5.1.2 Syntax: ETRN domain (a domain name)",
    "250 2.1.0 Ok",
    "503 5.5.1 Error: MAIL transaction in progress",
    "221 2.0.0 Bye",
  ]);
  assert.deepEqual(asked, [["far.test", false], ["far.test", true], ["empty.test", false], ["broken.test", false]]);
  const without = await converse("EHLO c\r\nETRN far.test\r\nQUIT\r\n");
  assert.ok(!without.replies.some((l) => /^250[- ]ETRN$/.test(l)));
  assert.ok(without.replies.includes("502 5.5.1 Error: command not implemented"));
});

test("DSN (RFC 3461): RET/ENVID on MAIL and NOTIFY/ORCPT on RCPT reach the envelope; bad values are 501 5.5.4", async () => {
  const { replies, stored } = await converse(
    "EHLO c\r\nMAIL FROM:<a@x.test> RET=HDRS ENVID=QQ+2B1\r\nRCPT TO:<b@local.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b+40local.test\r\n" +
      "RCPT TO:<c@local.test> NOTIFY=NEVER,SUCCESS\r\nRCPT TO:<d@local.test> BOGUS=1\r\nDATA\r\nSubject: s\r\n\r\nx\r\n.\r\nMAIL FROM:<a@x.test> RET=ALL\r\nQUIT\r\n",
  );
  assert.deepEqual(replies.slice(-8), [
    "250 2.1.0 Ok",
    "250 2.1.5 Ok",
    "501 5.5.4 Bad NOTIFY parameter: use NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY (RFC 3461)",
    "555 5.5.4 Unsupported option: BOGUS",
    "354 End data with <CR><LF>.<CR><LF>",
    "250 2.0.0 Ok: queued as ID1",
    "501 5.5.4 Bad RET parameter: use RET=FULL or RET=HDRS (RFC 3461)",
    "221 2.0.0 Bye",
  ]);
  const env = stored[0]!.env;
  assert.deepEqual(env.dsn, { ret: "HDRS", envid: "QQ+1" });
  assert.deepEqual(env.recipients[0]!.dsn, { notify: { kind: "on", events: ["FAILURE", "DELAY"] }, orcpt: { addrType: "rfc822", address: "b@local.test" } });
});

test("a HELO/EHLO claiming our name or address is refused 550 5.7.1 (loopback counts here: exemptLoopback off); others pass", async () => {
  const heloCheck = new HeloCheck({ ownNames: ["mx.test", "local.test"], ownAddresses: ["192.0.2.1"], exemptLoopback: false });
  const refused = (name: string) => `550 5.7.1 ${name}: Helo command rejected: that is my own name or address, and you are not me`;
  // The address the client connected to ([127.0.0.1] here) is ours too.
  for (const helo of ["EHLO MX.test", "HELO local.test", "EHLO [192.0.2.1]", "EHLO [127.0.0.1]"]) {
    const { replies } = await converse(`${helo}\r\nQUIT\r\n`, { heloCheck });
    assert.deepEqual(replies, ["220 mx.test ESMTP Petrel", refused(helo.slice(5)), "221 2.0.0 Bye"], helo);
  }
  assert.deepEqual((await converse("HELO c.test\r\nQUIT\r\n", { heloCheck })).replies[1], "250 mx.test");
  const exempt = new HeloCheck({ ownNames: ["mx.test"], exemptLoopback: true });
  assert.equal((await converse("HELO mx.test\r\nQUIT\r\n", { heloCheck: exempt })).replies[1], "250 mx.test");
});

test("the envelope carries the listener, AUTH state and the client's reverse DNS from connect", async () => {
  let asked = "";
  const reverseDns = { lookup: async (ip: string): Promise<ClientName> => ((asked = ip), { kind: "unconfirmed", name: "liar.test" }) };
  const { stored } = await converse("EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@local.test>\r\nDATA\r\nSubject: x\r\n\r\n.\r\nQUIT\r\n", { reverseDns });
  assert.equal(asked, "127.0.0.1");
  assert.deepEqual([stored[0]!.env.client, stored[0]!.env.listener, stored[0]!.env.authenticated, stored[0]!.env.source], [{ kind: "unconfirmed", name: "liar.test" }, "smtp", false, "smtp"]);
  const { stored: without } = await converse("EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@local.test>\r\nDATA\r\nSubject: x\r\n\r\n.\r\nQUIT\r\n");
  assert.equal(without[0]!.env.client, undefined);
});
