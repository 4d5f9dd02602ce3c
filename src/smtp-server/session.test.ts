// The SMTP session alone: a real loopback socket, but fake policy and message store, so the
// protocol is tested without SQLite or disk. Transcripts list client lines and expected replies.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { formatAddress, type Address } from "../core/address.js";
import { reply } from "../core/reply.js";
import { silentLogger } from "../core/log.js";
import type { Envelope, IncomingMessage } from "../spool/spool.js";
import { SmtpSession, type SmtpSessionOptions } from "./session.js";

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

async function converse(input: string, opts: Partial<SmtpSessionOptions> = {}) {
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
    void new SmtpSession(sock, { options: { ...options, ...opts }, policy, store, log: silentLogger(), newId: () => "ID1" }).run();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const client = net.connect(port, "127.0.0.1");
  let out = "";
  client.on("data", (d) => (out += d.toString("latin1")));
  await new Promise((r) => client.once("connect", r));
  client.write(input);
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
    "250-mx.test Hello client.test [127.0.0.1]",
    "250-PIPELINING",
    "250-SIZE 1000",
    "250-8BITMIME",
    "250-ENHANCEDSTATUSCODES",
    "250-SMTPUTF8",
    "250-CHUNKING",
    "250 HELP",
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
  const { replies } = await converse(
    "MAIL FROM:<a@x.test>\r\nHELO c\r\nRCPT TO:<b@local.test>\r\nMAIL FROM:<a@x.test> SIZE=5000\r\nMAIL FROM:<a@x.test>\r\nDATA\r\n" +
      "RCPT TO:<b@local.test>\r\nRCPT TO:<c@local.test>\r\nRCPT TO:<d@local.test>\r\nTURN\r\nBOGUS\r\nNOOP\r\n",
  );
  assert.deepEqual(replies, [
    "220 mx.test ESMTP Petrel",
    "503 5.5.1 Error: send HELO/EHLO first",
    "250 mx.test",
    "503 5.5.1 Error: need MAIL command",
    "552 5.3.4 Message size exceeds fixed maximum message size",
    "250 2.1.0 Ok",
    "554 5.5.1 Error: no valid recipients",
    "250 2.1.5 Ok",
    "250 2.1.5 Ok",
    "452 4.5.3 Error: too many recipients",
    "502 5.5.1 Error: command not implemented",
    "421 4.7.0 mx.test Error: too many errors, closing connection",
  ]);
  void replies;
});

test("a message over the size limit is refused after its end and the session goes on", async () => {
  const { replies, stored } = await converse(
    "HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@local.test>\r\nDATA\r\n" + "x".repeat(2000) + "\r\n.\r\nNOOP\r\nQUIT\r\n",
  );
  assert.deepEqual(replies.slice(-4), ["354 End data with <CR><LF>.<CR><LF>", "552 5.3.4 Message size exceeds fixed maximum message size", "250 2.0.0 Ok", "221 2.0.0 Bye"]);
  assert.equal(stored[0]!.committed, false);
});

test("too many NOOP-like commands without a message end the session with 421 4.7.0", async () => {
  const { replies } = await converse("HELO c\r\n" + "NOOP\r\n".repeat(4) + "RSET\r\nVRFY x\r\n", { maxJunkCommands: 5 });
  assert.deepEqual(replies.slice(1), [
    "250 mx.test",
    "250 2.0.0 Ok",
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
    input += `${verb}${junk}\r\n`;
    lines++;
  }
  const { replies } = await converse(input + "QUIT\r\n", { maxErrors: 1000, maxJunkCommands: 1000 });
  const finals = replies.filter((r) => /^\d{3} /.test(r));
  assert.equal(finals.length, 1 + lines + 1, "greeting + one reply per line + QUIT");
  assert.equal(finals.at(-1), "221 2.0.0 Bye");
});
