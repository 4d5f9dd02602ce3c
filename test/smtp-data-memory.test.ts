// Checks that DATA streams to disk: a 20 MB message sent in 64 KB writes must not raise the server's
// peak resident memory (VmHWM in /proc/<pid>/status, Linux only) by 20 MB or more, and the stored
// copy must be complete. The child is `bin/petrel serve`, which is node itself, so its pid is the server's.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { RawSmtp } from "./helpers/smtp-client.js";
import { command, dataStream, deliveredContent, greeted, lf, queuedId, readsId, sendMessage } from "./smtp-protocol-helpers.js";

const MB = 1024 * 1024;

function peakRssKb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  assert.ok(m, "VmHWM in /proc/<pid>/status");
  return Number(m[1]);
}

describe("memory while receiving a large message", { skip: process.platform !== "linux" && "needs /proc (Linux)" }, () => {
  let server: TestServer;
  let c: RawSmtp | undefined;

  before(async () => {
    server = await startTestServer({ users: [["big@localhost", "pw"]], toml: `[limits]\nmax_message_size = ${32 * MB}\n` });
  });
  after(async () => {
    c?.close();
    assert.equal(await server.stop(), 0);
  });

  test("a 20 MB message in 64 KB writes grows peak RSS by less than 20 MB and is stored whole", async () => {
    const pid = server.process.pid!;
    c = await greeted(server.smtpPort);
    // Warm-up: the first message loads the code paths (spool, Maildir, logger) into memory.
    await sendMessage(c, "warm@remote.test", ["big@localhost"], Buffer.from("Subject: warm-up\r\n\r\nsmall\r\n"));
    const baseline = peakRssKb(pid);

    const line = Buffer.from("0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.-+=\r\n");
    const content = Buffer.alloc(20 * MB);
    for (let pos = 0; pos < content.length; pos += line.length) line.copy(content, pos);
    content.write("\r\n", content.length - 2); // end with CRLF whatever the last line's length
    const stream = dataStream(content);

    await command(c, "MAIL FROM:<huge@remote.test>", 250, "2.1.0");
    await command(c, "RCPT TO:<big@localhost>", 250, "2.1.5");
    await command(c, "DATA", 354, null);
    for (let pos = 0, n = 0; pos < stream.length; pos += 64 * 1024, n++) {
      c.write(stream.subarray(pos, pos + 64 * 1024));
      if (n % 8 === 7) await new Promise((r) => setImmediate(r));
    }
    const id = queuedId(await c.reply(60_000));
    const grownMb = (peakRssKb(pid) - baseline) / 1024;
    assert.ok(grownMb < 20, `peak RSS grew by ${grownMb.toFixed(1)} MB (baseline ${(baseline / 1024).toFixed(1)} MB)`);

    const files = server.mailbox("big@localhost").filter((f) => readsId(f, id));
    assert.equal(files.length, 1);
    const stored = deliveredContent(files[0]!);
    const expected = lf(content);
    assert.equal(stored.length, expected.length);
    assert.ok(stored.equals(expected), "stored content is the content sent, with LF line ends");
    assert.equal(Number(/,S=(\d+)/.exec(files[0]!)![1]), fs.statSync(files[0]!).size);
    await command(c, "QUIT", 221, "2.0.0");
  });
});
