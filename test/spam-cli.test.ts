// End-to-end tests of `petrel spam train|classify`: the real bin/petrel in a child process against a
// temp folder with a petrel.toml, training from a Maildir, an mbox and single files, then classifying.
// Exact stdout lines, exit codes and the single stderr line of each error.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { AccountStore } from "../src/store/account-store.js";
import { GTUBE, hamMessage, spamMessage } from "../src/testing/spam-fixtures.js";
import { runProgram, type ProgramRun } from "./helpers/run.js";

const BIN = fileURLToPath(new URL("../../bin/petrel", import.meta.url));

interface Sandbox {
  readonly dir: string;
  readonly dataDir: string;
  run(args: string[]): Promise<ProgramRun>;
}

function sandbox(t: { after(fn: () => void): void }, extra = ""): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-spam-cli-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const dataDir = path.join(dir, "data");
  fs.mkdirSync(dataDir, { mode: 0o700 });
  const config = path.join(dir, "petrel.toml");
  fs.writeFileSync(config, `data_dir = ${JSON.stringify(dataDir)}\ndomains = ["example.test"]\n[spam]\nbayes_min_trained = 10\n${extra}`);
  return { dir, dataDir, run: (args) => runProgram(process.execPath, [BIN, ...args, "--config", config], { cwd: dir, timeoutMs: 30_000 }) };
}

/** 20 spam fixtures in a Maildir (cur/ and new/), 20 ham fixtures in one mbox. */
function corpus(dir: string): { maildir: string; mbox: string } {
  const maildir = path.join(dir, "Junk");
  for (const sub of ["cur", "new", "tmp"]) fs.mkdirSync(path.join(maildir, sub), { recursive: true });
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(maildir, i % 2 ? "cur" : "new", `${i}.host`), spamMessage(i).replace(/\r\n/g, "\n"));
  const mbox = path.join(dir, "ham.mbox");
  fs.writeFileSync(mbox, Array.from({ length: 20 }, (_, i) => `From bob@example.org Mon Nov 30 10:00:${String(i).padStart(2, "0")} 2026\n${hamMessage(i).replace(/\r\n/g, "\n")}\n`).join(""));
  return { maildir, mbox };
}

function ok(r: ProgramRun, what: string): string[] {
  assert.equal(r.stderr, "", `stderr of ${what}`);
  assert.equal(r.status, 0, `exit status of ${what}`);
  return r.stdout.replace(/\n$/, "").split("\n");
}

function fails(r: ProgramRun, line: string): void {
  assert.equal(r.stderr, `${line}\n`);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, "");
}

test("spam train from a Maildir and an mbox, then classify prints one verdict line per file", async (t) => {
  const s = sandbox(t);
  const { maildir, mbox } = corpus(s.dir);
  const db = path.join(s.dataDir, "bayes", "global.db");
  assert.deepEqual(ok(await s.run(["spam", "train", "--spam", maildir]), "train spam"), [`spam: 20 learned, 0 already trained, 0 moved from ham; database now 20 spam, 0 ham (${db})`]);
  assert.deepEqual(ok(await s.run(["spam", "train", "--ham", mbox]), "train ham"), [`ham: 20 learned, 0 already trained, 0 moved from spam; database now 20 spam, 20 ham (${db})`]);
  // Training is idempotent: the same messages again change nothing.
  assert.deepEqual(ok(await s.run(["spam", "train", "--ham", mbox]), "train ham again"), [`ham: 0 learned, 20 already trained, 0 moved from spam; database now 20 spam, 20 ham (${db})`]);

  const spamFile = path.join(s.dir, "new-spam.eml");
  fs.writeFileSync(spamFile, spamMessage(200));
  const hamFile = path.join(s.dir, "new-ham.eml");
  fs.writeFileSync(hamFile, hamMessage(201));
  const gtubeFile = path.join(s.dir, "gtube.eml");
  fs.writeFileSync(gtubeFile, `From: promo@deals.example\r\nSubject: FREE MONEY!!!\r\n\r\n${GTUBE}\r\n`);
  const lines = ok(await s.run(["spam", "classify", spamFile, hamFile, gtubeFile]), "classify");
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, new RegExp(`^${spamFile}: spam (0\\.9\\d{3}|1\\.0000)$`));
  assert.match(lines[1]!, new RegExp(`^${hamFile}: ham 0\\.0\\d{3}$`));
  assert.match(lines[2]!, new RegExp(`^${gtubeFile}: spam (0\\.9\\d{3}|1\\.0000)$`));
  assert.equal(fs.statSync(db).mode & 0o777, 0o600);

  // A ham message now trained as spam moves over.
  assert.deepEqual(ok(await s.run(["spam", "train", "--spam", hamFile]), "train ham file as spam"), [`spam: 1 learned, 0 already trained, 0 moved from ham; database now 21 spam, 20 ham (${db})`]);
  assert.deepEqual(ok(await s.run(["spam", "train", "--ham", hamFile]), "and back"), [`ham: 0 learned, 0 already trained, 1 moved from spam; database now 20 spam, 21 ham (${db})`]);
});

test("spam commands fail with one line: no class, bad path, no database, unknown user", async (t) => {
  const s = sandbox(t);
  const file = path.join(s.dir, "m.eml");
  fs.writeFileSync(file, hamMessage(1));
  fails(await s.run(["spam", "train", file]), "petrel: say what the messages are: --spam or --ham (one of them)");
  fails(await s.run(["spam", "train", "--spam", "--ham", file]), "petrel: say what the messages are: --spam or --ham (one of them)");
  fails(await s.run(["spam", "train", "--spam", file, path.join(s.dir, "missing")]), `petrel: Cannot read ${path.join(s.dir, "missing")}: no such file or folder`);
  // The bad path was found before anything was trained.
  assert.equal(fs.existsSync(path.join(s.dataDir, "bayes")), false);
  fails(await s.run(["spam", "classify", file]), `petrel: no Bayes database at ${path.join(s.dataDir, "bayes", "global.db")} yet: train it first (petrel spam train --spam|--ham PATH...)`);
  fails(await s.run(["spam", "train", "--spam", "--user", "nobody@example.test", file]), "petrel: no such user: nobody@example.test");
  fails(await s.run(["spam", "train", "--spam", "--user", "not an address", file]), 'petrel: not an address: "not an address"');
  ok(await s.run(["spam", "train", "--spam", file]), "train one");
  fails(await s.run(["spam", "classify", file]), "petrel: the Bayes database has 1 spam and 0 ham messages: train both classes first");
});

test("--user trains that user's own database (per-user scope), and classify warns below bayes_min_trained", async (t) => {
  const s = sandbox(t, 'bayes_scope = "per-user"\n');
  const store = new AccountStore(s.dataDir, ["example.test"]);
  store.addUser("alice@example.test", "pw");
  store.close();
  const spamFile = path.join(s.dir, "s.eml");
  fs.writeFileSync(spamFile, spamMessage(1));
  const hamFile = path.join(s.dir, "h.eml");
  fs.writeFileSync(hamFile, hamMessage(1));
  const db = path.join(s.dataDir, "bayes", "users", "alice@example.test.db");
  assert.deepEqual(ok(await s.run(["spam", "train", "--spam", "--user", "Alice@Example.Test", spamFile]), "train alice"), [`spam: 1 learned, 0 already trained, 0 moved from ham; database now 1 spam, 0 ham (${db})`]);
  ok(await s.run(["spam", "train", "--ham", "--user", "alice@example.test", hamFile]), "train alice ham");
  const r = await s.run(["spam", "classify", "--user", "alice@example.test", spamFile]);
  assert.equal(r.status, 0);
  assert.equal(r.stderr, "petrel: the database has 1 spam and 1 ham messages; the server gives verdicts from 10 of each ([spam] bayes_min_trained)\n");
  assert.match(r.stdout, new RegExp(`^${spamFile}: (spam|unsure|ham) [01]\\.\\d{4}\\n$`));
  // Without --user, the per-user scope is pointed out.
  const global = await s.run(["spam", "train", "--spam", spamFile]);
  assert.equal(global.stderr, 'petrel: [spam] bayes_scope is "per-user": the server reads only per-user databases (--user)\n');
});
