// Unit tests of the data_dir lock: one holder at a time (also within one process), a clear message
// naming the holder's pid, free again after release.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DataDirLock } from "./data-dir-lock.js";

test("a second acquire fails naming the holder; after release it succeeds", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-lock-"));
  try {
    const held = DataDirLock.acquire(dir);
    assert.throws(() => DataDirLock.acquire(dir), { message: `data_dir ${dir} is in use by another petrel serve (pid ${process.pid})` });
    held.release();
    DataDirLock.acquire(dir).release();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
