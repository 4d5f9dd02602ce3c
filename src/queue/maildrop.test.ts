// Unit tests of the maildrop format: a written message reads back (envelope + content bytes as given),
// nothing shows in new/ before commit or after abort, folders are private, and the reader refuses
// files a local user could have forged (bad JSON, no recipients, no envelope line end).
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { text } from "node:stream/consumers";
import { MaildropFormatError, MaildropWriter, listMaildrop, openDropped, removeDropped, sweepMaildropTmp } from "./maildrop.js";

const ENV = { sender: "a@x.test", recipients: ["b@y.test", "c@z.test"], uid: 1000, user: "a", received: "2026-11-30T12:00:00.000Z" };
const tmpData = () => fs.mkdtempSync(path.join(os.tmpdir(), "petrel-maildrop-"));

test("a committed message reads back: envelope, and content exactly as written (CRLF kept)", async () => {
  const dir = tmpData();
  const w = await MaildropWriter.create(dir, ENV);
  assert.deepEqual(await listMaildrop(dir), [], "nothing visible before commit");
  const content = "Subject: s\r\n\r\nline\nother\r\n";
  await w.write(Buffer.from(content.slice(0, 7)));
  await w.write(Buffer.from(content.slice(7)));
  const final = await w.commit();
  const list = await listMaildrop(dir);
  assert.deepEqual(list.map((e) => e.path), [final]);
  const m = await openDropped(final);
  assert.deepEqual(m.envelope, { version: 1, id: list[0]!.id, ...ENV });
  assert.equal(m.size, content.length);
  assert.equal(await text(m.content), content);
  assert.equal(fs.statSync(path.join(dir, "maildrop")).mode & 0o777, 0o700);
  assert.equal(fs.statSync(final).mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(path.join(dir, "maildrop", "tmp")), []);
  await removeDropped(final);
  assert.deepEqual(await listMaildrop(dir), []);
});

test("abort leaves nothing in tmp/ or new/", async () => {
  const dir = tmpData();
  const w = await MaildropWriter.create(dir, ENV);
  await w.write(Buffer.alloc(100_000, 0x61));
  await w.abort();
  assert.deepEqual(fs.readdirSync(path.join(dir, "maildrop", "tmp")), []);
  assert.deepEqual(await listMaildrop(dir), []);
});

test("no maildrop folder yet: an empty list", async () => {
  assert.deepEqual(await listMaildrop(tmpData()), []);
});

test("forged or broken files are refused with MaildropFormatError", async () => {
  const dir = tmpData();
  const f = path.join(dir, "m");
  for (const content of ["not json\nbody", `${JSON.stringify({ ...ENV, version: 1, id: "x", recipients: [] })}\nbody`, `${JSON.stringify({ ...ENV, version: 2, id: "x" })}\n`, '{"version":1']) {
    fs.writeFileSync(f, content);
    await assert.rejects(openDropped(f), MaildropFormatError, content);
  }
});

test("the sweep removes old tmp/ leftovers only; links in new/ are not listed", async () => {
  const dir = tmpData();
  const w = await MaildropWriter.create(dir, ENV);
  await w.write(Buffer.from("x\n"));
  // A killed sendmail's file: still in tmp/. Young, it stays; an hour old, it goes.
  assert.equal(await sweepMaildropTmp(dir, 3_600_000), 0);
  assert.equal(await sweepMaildropTmp(dir, 3_600_000, Date.now() + 3_600_001), 1);
  assert.deepEqual(fs.readdirSync(path.join(dir, "maildrop", "tmp")), []);
  await w.abort();
  fs.symlinkSync("/etc/passwd", path.join(dir, "maildrop", "new", "planted"));
  assert.deepEqual(await listMaildrop(dir), []);
  await assert.rejects(openDropped(path.join(dir, "maildrop", "new", "planted")), { code: "ELOOP" });
});
