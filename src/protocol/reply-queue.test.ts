// Unit tests for ReplyQueue's backpressure over a fake socket: ready() holds the session while the
// peer leaves more than WRITE_MARK unread, pushAll() writes long answers in bounded pieces, and a
// peer that closes or idles out ends the wait with ReaderClosed/ReaderTimeout.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeSocket } from "../testing/fake-socket.js";
import { ReplyQueue, WRITE_MARK } from "./reply-queue.js";
import { ReaderClosed, ReaderTimeout, SocketReader } from "./socket-reader.js";

const tick = () => new Promise((r) => setImmediate(r));

test("ready() resolves at once while the peer keeps up, and holds while output piles up unread", async () => {
  const sock = new FakeSocket();
  const q = new ReplyQueue(sock.asSocket());
  q.push("250 ok\r\n");
  await q.ready(); // small: nothing written yet, nothing to wait for
  assert.equal(sock.written.length, 0);
  q.flush();
  q.push("x".repeat(WRITE_MARK + 10));
  let ready = false;
  const p = q.ready().then(() => (ready = true));
  await tick();
  assert.equal(sock.written.length, 2, "a queue above the mark is written at once");
  assert.equal(ready, false, "and the session waits for the peer");
  sock.peerReads();
  await p;
  assert.equal(ready, true);
});

test("pushAll() writes a long answer in pieces of about WRITE_MARK, waiting for the peer between them", async () => {
  const sock = new FakeSocket();
  const q = new ReplyQueue(sock.asSocket());
  const lines = Array.from({ length: 20000 }, (_, i) => `250-member${i}@example.test\r\n`);
  let done = false;
  const p = q.pushAll(lines).then(() => (done = true));
  let reads = 0;
  while (!done) {
    await tick();
    assert.ok(sock.writableLength <= WRITE_MARK + 64, `unread output ${sock.writableLength}`);
    sock.peerReads();
    reads++;
  }
  await p;
  q.flush();
  assert.equal(sock.written.join(""), lines.join(""));
  assert.ok(reads > 5, `${reads} rounds`);
});

test("a peer that closes or idles out while output waits ends ready() with ReaderClosed / ReaderTimeout", async () => {
  for (const [event, error] of [["close", ReaderClosed], ["timeout", ReaderTimeout]] as const) {
    const sock = new FakeSocket();
    const q = new ReplyQueue(sock.asSocket());
    q.push("y".repeat(WRITE_MARK + 1));
    const p = q.ready();
    await tick();
    sock.emit(event);
    await assert.rejects(p, error);
  }
});

test("SocketReader.waitForInput: quiet, input, or closed (the SMTP greeting pause)", async () => {
  const quiet = new FakeSocket();
  assert.equal(await new SocketReader(quiet.asSocket(), () => undefined).waitForInput(20), "quiet");
  const talker = new FakeSocket();
  const r = new SocketReader(talker.asSocket(), () => undefined);
  const p = r.waitForInput(5000);
  talker.push("EHLO x\r\n");
  assert.equal(await p, "input");
  assert.deepEqual(await r.readLine(100), Buffer.from("EHLO x"), "the input is still there to read");
  const leaver = new FakeSocket();
  const p2 = new SocketReader(leaver.asSocket(), () => undefined).waitForInput(5000);
  leaver.emit("end");
  assert.equal(await p2, "closed");
});
