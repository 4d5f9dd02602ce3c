// Unit tests for SocketReader over a fake socket: lines split anywhere, CRLF and LF ends,
// too-long lines, exact reads, end of stream, timeouts and interrupts, flush-before-wait.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { FakeSocket } from "../testing/fake-socket.js";
import { DotDecoder } from "./dot-decoder.js";
import { ReaderInterrupted, ReaderTimeout, SocketReader } from "./socket-reader.js";

function setup() {
  const sock = new FakeSocket();
  let waits = 0;
  const reader = new SocketReader(sock as unknown as Socket, () => waits++);
  return { sock, reader, waits: () => waits };
}

const tick = () => new Promise((r) => setImmediate(r));

test("reads lines split across chunks, CRLF or LF terminated", async () => {
  const { sock, reader } = setup();
  const p = reader.readLine(100);
  sock.push("EH");
  await tick();
  sock.push("LO a\r");
  await tick();
  sock.push("\nNOOP\nQUIT\r\n");
  assert.equal(String(await p), "EHLO a");
  assert.equal(String(await reader.readLine(100)), "NOOP");
  assert.equal(String(await reader.readLine(100)), "QUIT");
});

test("onWait runs only when no complete line is buffered", async () => {
  const { sock, reader, waits } = setup();
  sock.push("A\r\nB\r\n");
  await reader.readLine(10);
  await reader.readLine(10);
  assert.equal(waits(), 0);
  const p = reader.readLine(10);
  await tick();
  assert.equal(waits(), 1);
  sock.push("C\r\n");
  assert.equal(String(await p), "C");
});

test("an over-long line is reported once and the next line is read", async () => {
  const { sock, reader } = setup();
  const p = reader.readLine(10);
  sock.push("x".repeat(8));
  await tick();
  sock.push("y".repeat(50));
  await tick();
  sock.push("z\r\nNEXT\r\n");
  assert.equal(await p, "too-long");
  assert.equal(String(await reader.readLine(10)), "NEXT");
});

test("end of stream gives null", async () => {
  const { sock, reader } = setup();
  const p = reader.readLine(10);
  sock.push("partial");
  sock.emit("end");
  assert.equal(await p, null);
});

test("readExact hands over exactly n bytes and leaves the rest", async () => {
  const { sock, reader } = setup();
  sock.push("0123");
  const got: Buffer[] = [];
  const p = reader.readExact(10, (b) => void got.push(Buffer.from(b)));
  await tick();
  sock.push("456789NEXT\r\n");
  await p;
  assert.equal(Buffer.concat(got).toString(), "0123456789");
  assert.equal(String(await reader.readLine(10)), "NEXT");
});

test("readDotData stops at the end and leaves the next command", async () => {
  const { sock, reader } = setup();
  sock.push("hello\r\n..dot\r\n.\r\nQUIT\r\n");
  const got: Buffer[] = [];
  await reader.readDotData(new DotDecoder(), (ps) => void got.push(...ps.map((p) => Buffer.from(p))));
  assert.equal(Buffer.concat(got).toString(), "hello\r\n.dot\r\n");
  assert.equal(String(await reader.readLine(10)), "QUIT");
});

test("timeout and interrupt wake a waiting read with an error", async () => {
  const a = setup();
  const p = a.reader.readLine(10);
  await tick();
  a.sock.emit("timeout");
  await assert.rejects(p, ReaderTimeout);
  const b = setup();
  const q = b.reader.readLine(10);
  await tick();
  b.reader.interrupt("shutdown");
  await assert.rejects(q, ReaderInterrupted);
});

test("a flood of unread input pauses the socket, reading resumes it", async () => {
  const { sock, reader } = setup();
  sock.push(Buffer.alloc(300 * 1024, 0x61));
  assert.equal(sock.paused, true);
  await reader.readExact(300 * 1024 - 10, () => undefined);
  assert.equal(sock.paused, false);
});
