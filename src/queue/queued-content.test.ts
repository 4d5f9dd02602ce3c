// Unit tests: the CRLF content of a queued file matches the size measure() announces, across chunk
// boundaries, with 8-bit detection; a large file streams.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { crlfContent, measure } from "./queued-content.js";

async function roundTrip(content: Buffer): Promise<{ out: Buffer; size: number; eightBit: boolean }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-qc-"));
  try {
    const file = path.join(dir, "m.eml");
    fs.writeFileSync(file, content);
    const parts: Buffer[] = [];
    for await (const p of crlfContent(file)) parts.push(p);
    return { out: Buffer.concat(parts), ...(await measure(file)) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test("LF becomes CRLF, an existing CRLF and a bare CR stay; the measured size is the sent size; 8-bit is seen", async () => {
  const r = await roundTrip(Buffer.from("Subject: x\n\nline\nbare\rcr\nkeep\r\nend", "latin1"));
  assert.equal(r.out.toString("latin1"), "Subject: x\r\n\r\nline\r\nbare\rcr\r\nkeep\r\nend");
  assert.equal(r.size, r.out.length);
  assert.equal(r.eightBit, false);
  const u = await roundTrip(Buffer.from("Subject: caf\u00e9\n\nx\n", "utf8"));
  assert.equal(u.eightBit, true);
  assert.equal(u.size, u.out.length);
});

test("a CR at the end of one 64 KB chunk and its LF at the start of the next is a CRLF; 3 MB stream with the right size", async () => {
  const head = Buffer.alloc(64 * 1024 - 1, 0x61);
  const r = await roundTrip(Buffer.concat([head, Buffer.from("\r\nnext\n")]));
  assert.equal(r.out.length, head.length + "\r\nnext\r\n".length);
  assert.equal(r.size, r.out.length);
  const big = await roundTrip(Buffer.from("0123456789abcdef\n".repeat(180_000)));
  assert.equal(big.out.length, 18 * 180_000);
  assert.equal(big.size, big.out.length);
});
