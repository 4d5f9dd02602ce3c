import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { checkPaths, readMessages } from "./message-sources.js";

async function collect(paths: string[]): Promise<{ label: string; text: string }[]> {
  const out = [];
  for await (const m of readMessages(paths)) out.push({ label: m.label, text: m.content.toString("latin1") });
  return out;
}

test("an mbox is split at From lines, >From unquoted; a single-message mbox keeps its name", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-sources-"));
  const mbox = path.join(dir, "inbox.mbox");
  fs.writeFileSync(mbox, "From a@x Thu Aug 22 13:17:22 2002\nSubject: one\n\nbody one\n>From the start\n\nFrom b@x Fri Aug 23 10:00:00 2002\nSubject: two\n\nbody two\nFrom here, not a separator\n");
  const got = await collect([mbox]);
  assert.deepEqual(got.map((m) => m.label), [`${mbox}#1`, `${mbox}#2`]);
  assert.equal(got[0]!.text, "From a@x Thu Aug 22 13:17:22 2002\nSubject: one\n\nbody one\nFrom the start\n");
  assert.match(got[1]!.text, /body two\nFrom here, not a separator\n$/);
  const single = path.join(dir, "one.eml");
  fs.writeFileSync(single, "From a@x Thu Aug 22 13:17:22 2002\nSubject: one\n\nbody\n");
  assert.deepEqual((await collect([single])).map((m) => m.label), [single]);
});

test("a Maildir gives the files of cur/ and new/, a plain folder its files, dot-files skipped", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-sources-"));
  const maildir = path.join(dir, "Maildir");
  for (const sub of ["cur", "new", "tmp"]) fs.mkdirSync(path.join(maildir, sub), { recursive: true });
  fs.writeFileSync(path.join(maildir, "cur", "1.host:2,S"), "Subject: a\r\n\r\nx\r\n");
  fs.writeFileSync(path.join(maildir, "new", "2.host"), "Subject: b\r\n\r\ny\r\n");
  fs.writeFileSync(path.join(maildir, "tmp", "3.host"), "Subject: unfinished\r\n\r\nz\r\n");
  const folder = path.join(dir, "plain");
  fs.mkdirSync(folder);
  fs.writeFileSync(path.join(folder, "m1.eml"), "Subject: c\r\n\r\nw\r\n");
  fs.writeFileSync(path.join(folder, ".hidden"), "x");
  const got = await collect([maildir, folder]);
  assert.deepEqual(got.map((m) => path.relative(dir, m.label)), ["Maildir/cur/1.host:2,S", "Maildir/new/2.host", "plain/m1.eml"]);
});

test("a missing path is one clear error before anything is read", async () => {
  await assert.rejects(checkPaths([os.tmpdir(), "/no/such/place"]), { message: "Cannot read /no/such/place: no such file or folder" });
});
