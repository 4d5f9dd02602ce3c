// Unit tests of DirSyncer: group commit (calls made during an fsync share the next one) and that
// the fsync always reaches the folder now at the path, even after it was removed and made again.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import type { FileHandle } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { DirSyncer } from "./dir-sync.js";

test("after rm -rf and mkdir of a folder, the fsync hits the new folder (inode check)", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-dirsync-"));
  const dir = path.join(root, "new");
  try {
    const synced: number[] = [];
    const syncer = new DirSyncer(async (fh: FileHandle) => {
      synced.push((await fh.stat()).ino);
      await fh.sync();
    });
    fs.mkdirSync(dir);
    const first = fs.statSync(dir).ino;
    await syncer.sync(dir);
    // An open descriptor keeps the removed folder's inode allocated, so the new folder cannot get
    // the same number (ext4 reuses freed inode numbers at once).
    const holdOld = fs.openSync(dir, "r");
    try {
      fs.rmSync(dir, { recursive: true });
      fs.mkdirSync(dir);
      const second = fs.statSync(dir).ino;
      assert.notEqual(first, second);
      await syncer.sync(dir);
      assert.deepEqual(synced, [first, second]);
    } finally {
      fs.closeSync(holdOld);
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("calls made while an fsync runs share one later fsync", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-dirsync-"));
  try {
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const syncer = new DirSyncer(async () => {
      calls++;
      if (calls === 1) await gate;
    });
    const a = syncer.sync(root);
    await new Promise((r) => setTimeout(r, 20));
    const b = syncer.sync(root), c = syncer.sync(root);
    release();
    await Promise.all([a, b, c]);
    assert.equal(calls, 2, "one running fsync and one shared by the two calls made during it");
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("a removed folder fails the sync (the caller decides), a made-again one works", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-dirsync-"));
  try {
    const syncer = new DirSyncer();
    const dir = path.join(root, "gone");
    await assert.rejects(syncer.sync(dir), { code: "ENOENT" });
    fs.mkdirSync(dir);
    await syncer.sync(dir);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
