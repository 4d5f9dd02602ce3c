// End-to-end tests of the account commands: run the real bin/petrel in a child process against a temp
// folder holding a petrel.toml, and check exit codes, stdout lines and the single stderr line of each
// error. Also covers config errors (unknown keys, bad values) and picking up ./petrel.toml from the cwd.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { AccountStore } from "../src/store/account-store.js";
import { runProgram, type ProgramRun } from "./helpers/run.js";

// Compiled to dist/test/cli.test.js; the launcher lives in <project>/bin.
const BIN = fileURLToPath(new URL("../../bin/petrel", import.meta.url));

type Run = ProgramRun;

interface Sandbox {
  readonly dir: string;
  readonly config: string;
  readonly dataDir: string;
  /** Runs petrel with --config appended. */
  run(args: string[], input?: string): Promise<Run>;
  /** Runs petrel, expects exit 0 and no stderr, returns the stdout lines. */
  ok(args: string[], input?: string): Promise<string[]>;
  /** Runs petrel, expects a non-zero exit, no stdout and exactly `line` on stderr. */
  fails(args: string[], line: string, input?: string): Promise<void>;
}

/** Runs bin/petrel with `input` on stdin (a pipe, as in scripts). */
function petrel(args: string[], opts: { input?: string; cwd?: string } = {}): Promise<Run> {
  return runProgram(process.execPath, [BIN, ...args], { ...opts, timeoutMs: 30_000 });
}

function sandbox(toml?: string): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-cli-"));
  const dataDir = path.join(dir, "data");
  const config = path.join(dir, "petrel.toml");
  fs.writeFileSync(config, toml ?? `data_dir = ${JSON.stringify(dataDir)}\ndomains = ["localhost", "example.test"]\n`);
  const run = (args: string[], input?: string): Promise<Run> => petrel([...args, "--config", config], { input, cwd: dir });
  return {
    dir,
    config,
    dataDir,
    run,
    async ok(args, input) {
      const r = await run(args, input);
      assert.equal(r.stderr, "", `stderr of petrel ${args.join(" ")}`);
      assert.equal(r.status, 0, `exit status of petrel ${args.join(" ")}`);
      return lines(r.stdout);
    },
    async fails(args, line, input) {
      const r = await run(args, input);
      assert.equal(r.stderr, `${line}\n`, `stderr of petrel ${args.join(" ")}`);
      assert.notEqual(r.status, 0, `exit status of petrel ${args.join(" ")}`);
      assert.equal(r.stdout, "", `stdout of petrel ${args.join(" ")}`);
    },
  };
}

function lines(text: string): string[] {
  return text === "" ? [] : text.replace(/\n$/, "").split("\n");
}

function cleanup(s: Sandbox): void {
  fs.rmSync(s.dir, { recursive: true, force: true });
}

test("user add, list, passwd, name and del", async (t) => {
  const s = sandbox();
  t.after(() => cleanup(s));

  assert.deepEqual(await s.ok(["user", "list"]), []);
  assert.deepEqual(await s.ok(["user", "add", "Alice@LOCALHOST", "--password-stdin", "--name", "Alice Smith"], "s3cret\r\nignored second line\n"), [
    "added user alice@localhost",
  ]);
  assert.deepEqual(await s.ok(["user", "add", "bob@example.test", "--password-stdin", "--apop"], "bobpw"), ["added user bob@example.test"]);
  assert.deepEqual(await s.ok(["user", "list"]), ["bob@example.test\tapop", 'alice@localhost\t"Alice Smith"']);

  // The first line of stdin, CR/LF stripped, is the password.
  let store = new AccountStore(s.dataDir, ["localhost", "example.test"]);
  try {
    assert.equal(await store.checkPassword("alice@localhost", "s3cret"), true);
    assert.equal(await store.checkPassword("alice@localhost", "s3cret\r"), false);
    assert.equal(store.apopSecret("bob@example.test"), "bobpw");
  } finally {
    store.close();
  }

  assert.deepEqual(await s.ok(["user", "passwd", "alice@localhost", "--password-stdin", "--apop"], "n3w\n"), ["changed password of alice@localhost"]);
  assert.deepEqual(await s.ok(["user", "passwd", "BOB@example.test", "--password-stdin"], "other\n"), ["changed password of bob@example.test"]);
  assert.deepEqual(await s.ok(["user", "list"]), ["bob@example.test", 'alice@localhost\t"Alice Smith"\tapop']);
  store = new AccountStore(s.dataDir, ["localhost", "example.test"]);
  try {
    assert.equal(await store.checkPassword("alice@localhost", "n3w"), true);
    assert.equal(await store.checkPassword("alice@localhost", "s3cret"), false);
    assert.equal(store.apopSecret("bob@example.test"), null);
  } finally {
    store.close();
  }

  assert.deepEqual(await s.ok(["user", "name", "alice@localhost", "Alice Jones"]), ['set name of alice@localhost to "Alice Jones"']);
  assert.deepEqual(await s.ok(["user", "list"]), ["bob@example.test", 'alice@localhost\t"Alice Jones"\tapop']);
  assert.deepEqual(await s.ok(["user", "name", "alice@localhost", ""]), ["cleared name of alice@localhost"]);
  assert.deepEqual(await s.ok(["user", "list"]), ["bob@example.test", "alice@localhost\tapop"]);

  assert.deepEqual(await s.ok(["user", "del", "bob@example.test"]), ["deleted user bob@example.test"]);
  assert.deepEqual(await s.ok(["user", "list"]), ["alice@localhost\tapop"]);
});

test("user errors: one stderr line, non-zero exit, nothing changed", async (t) => {
  const s = sandbox();
  t.after(() => cleanup(s));
  await s.ok(["user", "add", "alice@localhost", "--password-stdin"], "pw\n");
  const before = await s.ok(["user", "list"]);

  // Each of these must fail and change nothing, so they can run side by side.
  await Promise.all([
    s.fails(["user", "add", "not-an-address", "--password-stdin"], 'petrel: Cannot parse address "not-an-address"', "pw\n"),
    s.fails(["user", "add", "../x@localhost", "--password-stdin"], 'petrel: Cannot parse address "../x@localhost"', "pw\n"),
    s.fails(["user", "add", ".hidden@localhost", "--password-stdin"], 'petrel: Cannot parse address ".hidden@localhost"', "pw\n"),
    s.fails(
      ["user", "add", '"a/b"@localhost', "--password-stdin"],
      'petrel: Cannot use "a/b"@localhost as a mailbox: use letters, digits and . _ + - = only',
      "pw\n",
    ),
    s.fails(
      ["user", "add", "x@elsewhere.org", "--password-stdin"],
      "petrel: Domain elsewhere.org is not local (local domains: localhost, example.test)",
      "pw\n",
    ),
    s.fails(["user", "add", "ALICE@localhost", "--password-stdin"], "petrel: alice@localhost already exists as a user", "pw\n"),
    s.fails(["user", "add", "carol@localhost", "--password-stdin"], "petrel: Password is empty", ""),
    s.fails(["user", "add", "carol@localhost", "--password-stdin"], "petrel: Password is empty", "\r\nsecond\n"),
    s.fails(["user", "add", "carol@localhost"], "petrel: required option '--password-stdin' not specified", "pw\n"),
    s.fails(["user", "add", "carol@localhost", "--password-stdin", "--bogus"], "petrel: unknown option '--bogus'", "pw\n"),
    s.fails(["user", "add", "--password-stdin"], "petrel: missing required argument 'address'", "pw\n"),
    s.fails(["user", "del", "nobody@localhost"], "petrel: No such user nobody@localhost"),
    s.fails(["user", "del"], "petrel: missing required argument 'address'"),
    s.fails(["user", "passwd", "nobody@localhost", "--password-stdin"], "petrel: No such user nobody@localhost", "pw\n"),
    s.fails(["user", "passwd", "alice@localhost", "--password-stdin"], "petrel: Password is empty", "\n"),
    s.fails(["user", "name", "nobody@localhost", "X"], "petrel: No such user nobody@localhost"),
    s.fails(["user", "name", "alice@localhost"], "petrel: missing required argument 'name'"),
    s.fails(["user", "bogus"], "petrel: unknown command 'bogus'"),
  ]);

  assert.deepEqual(await s.ok(["user", "list"]), before);
});

test("alias add, list and del, with errors", async (t) => {
  const s = sandbox();
  t.after(() => cleanup(s));
  await s.ok(["user", "add", "alice@localhost", "--password-stdin"], "pw\n");

  assert.deepEqual(await s.ok(["alias", "list"]), []);
  assert.deepEqual(await s.ok(["alias", "add", "Postmaster@localhost", "alice@localhost", "Bob@Remote.example"]), [
    "added alias postmaster@localhost -> alice@localhost, bob@remote.example",
  ]);
  assert.deepEqual(await s.ok(["alias", "add", "abuse@example.test", "postmaster@localhost"]), ["added alias abuse@example.test -> postmaster@localhost"]);
  assert.deepEqual(await s.ok(["alias", "list"]), ["abuse@example.test -> postmaster@localhost", "postmaster@localhost -> alice@localhost, bob@remote.example"]);

  await Promise.all([
    s.fails(["alias", "add", "alice@localhost", "bob@localhost"], "petrel: alice@localhost already exists as a user"),
    s.fails(["user", "add", "postmaster@localhost", "--password-stdin"], "petrel: postmaster@localhost already exists as an alias", "pw\n"),
    s.fails(["alias", "add", "postmaster@localhost", "carol@localhost", "ALICE@localhost"], "petrel: Alias postmaster@localhost already points to alice@localhost"),
    s.fails(["alias", "add", "x@localhost", "ok@localhost", "bad target"], 'petrel: Cannot parse address "bad target"'),
    s.fails(["alias", "add", "x@nowhere.example", "ok@localhost"], "petrel: Domain nowhere.example is not local (local domains: localhost, example.test)"),
    s.fails(["alias", "add", "x@localhost"], "petrel: missing required argument 'targets'"),
    s.fails(["alias", "del", "nobody@localhost"], "petrel: No such alias nobody@localhost"),
  ]);
  assert.deepEqual(await s.ok(["alias", "list"]), ["abuse@example.test -> postmaster@localhost", "postmaster@localhost -> alice@localhost, bob@remote.example"]);

  assert.deepEqual(await s.ok(["alias", "del", "POSTMASTER@localhost"]), ["deleted alias postmaster@localhost"]);
  assert.deepEqual(await s.ok(["alias", "list"]), ["abuse@example.test -> postmaster@localhost"]);
});

test("list add, show and del, with errors", async (t) => {
  const s = sandbox();
  t.after(() => cleanup(s));

  assert.deepEqual(await s.ok(["list", "add", "staff@localhost", "alice@localhost", "bob@example.test"]), ["added 2 members to list staff@localhost"]);
  assert.deepEqual(await s.ok(["list", "add", "Staff@LOCALHOST", "carol@remote.example"]), ["added 1 member to list staff@localhost"]);
  assert.deepEqual(await s.ok(["list", "show", "staff@localhost"]), ["alice@localhost", "bob@example.test", "carol@remote.example"]);

  await Promise.all([
    s.fails(["list", "add", "staff@localhost", "dave@localhost", "alice@localhost"], "petrel: alice@localhost is already a member of staff@localhost"),
    s.fails(["list", "del", "staff@localhost", "bob@example.test", "nobody@localhost"], "petrel: nobody@localhost is not a member of staff@localhost"),
    s.fails(["list", "show", "nolist@localhost"], "petrel: No such list nolist@localhost"),
    s.fails(["list", "del", "nolist@localhost"], "petrel: No such list nolist@localhost"),
    s.fails(["list", "show"], "petrel: missing required argument 'list'"),
  ]);
  assert.deepEqual(await s.ok(["list", "show", "staff@localhost"]), ["alice@localhost", "bob@example.test", "carol@remote.example"]);

  assert.deepEqual(await s.ok(["list", "del", "staff@localhost", "bob@example.test"]), ["removed 1 member from list staff@localhost"]);
  assert.deepEqual(await s.ok(["list", "show", "staff@localhost"]), ["alice@localhost", "carol@remote.example"]);
  assert.deepEqual(await s.ok(["list", "del", "staff@localhost"]), ["deleted list staff@localhost"]);
  await s.fails(["list", "show", "staff@localhost"], "petrel: No such list staff@localhost");
});

test("config errors name the offending key", async (t) => {
  const s = sandbox();
  t.after(() => cleanup(s));
  const data = `data_dir = ${JSON.stringify(s.dataDir)}\n`;

  fs.writeFileSync(s.config, `${data}bogus = 1\n`);
  await s.fails(["user", "list"], `petrel: Invalid config ${s.config}: unknown key bogus`);

  fs.writeFileSync(s.config, `${data}[limits]\nnope = 2\n`);
  await s.fails(["user", "list"], `petrel: Invalid config ${s.config}: unknown key limits.nope`);

  // Both at once: every unknown key is named, on one line.
  fs.writeFileSync(s.config, `${data}bogus = 1\n[limits]\nnope = 2\n`);
  const both = await s.run(["user", "list"]);
  assert.notEqual(both.status, 0);
  assert.equal(both.stdout, "");
  assert.equal(lines(both.stderr).length, 1, both.stderr);
  assert.match(both.stderr, /^petrel: Invalid config .*petrel\.toml: /);
  assert.match(both.stderr, /\bbogus\b/);
  assert.match(both.stderr, /\blimits\.nope\b/);

  fs.writeFileSync(s.config, `${data}[limits]\nmax_recipients = "x"\n`);
  const bad = await s.run(["user", "list"]);
  assert.notEqual(bad.status, 0);
  assert.equal(lines(bad.stderr).length, 1, bad.stderr);
  assert.match(bad.stderr, new RegExp(`^petrel: Invalid config ${escape(s.config)}: limits\\.max_recipients: `));

  fs.writeFileSync(s.config, `${data}domains = [\n`);
  const parse = await s.run(["user", "list"]);
  assert.notEqual(parse.status, 0);
  assert.equal(lines(parse.stderr).length, 1, parse.stderr);
  assert.match(parse.stderr, new RegExp(`^petrel: Cannot parse config ${escape(s.config)}: `));

  const missing = path.join(s.dir, "missing.toml");
  const r = await petrel(["user", "list", "--config", missing]);
  assert.notEqual(r.status, 0);
  assert.equal(r.stderr, `petrel: Cannot read config ${missing}: ENOENT\n`);

  // No store was opened, so no data folder was created.
  assert.equal(fs.existsSync(s.dataDir), false);
});

test("without --config, ./petrel.toml in the working folder is used", async (t) => {
  // A relative data_dir is taken from the config file's folder.
  const s = sandbox(`data_dir = "here-data"\ndomains = ["example.test"]\n`);
  t.after(() => cleanup(s));

  const add = await petrel(["user", "add", "zoe@example.test", "--password-stdin"], { input: "pw\n", cwd: s.dir });
  assert.equal(add.stderr, "");
  assert.equal(add.status, 0);
  assert.equal(add.stdout, "added user zoe@example.test\n");
  assert.ok(fs.existsSync(path.join(s.dir, "here-data", "petrel.db")));

  const list = await petrel(["user", "list"], { cwd: s.dir });
  assert.equal(list.status, 0);
  assert.equal(list.stdout, "zoe@example.test\n");
  // The same file given explicitly sees the same data.
  assert.deepEqual(await s.ok(["user", "list"]), ["zoe@example.test"]);

  const wrong = await petrel(["user", "add", "zoe@localhost", "--password-stdin"], { input: "pw\n", cwd: s.dir });
  assert.notEqual(wrong.status, 0);
  assert.equal(wrong.stderr, "petrel: Domain localhost is not local (local domains: example.test)\n");
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
