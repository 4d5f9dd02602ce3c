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
import { startTestServer } from "./helpers/server.js";
import { RawSmtp } from "./helpers/smtp-client.js";

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
      'petrel: Cannot use a/b@localhost as a mailbox: use letters, digits and . _ + - = only',
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
    s.fails(["user", "add", "carol@localhost"], "petrel: required option '--password-stdin' not specified (the password is the first line of stdin)", "pw\n"),
    // The missing address is named first, not the missing option (issue 7, item 13).
    s.fails(["user", "add"], "petrel: missing required argument 'address'", "pw\n"),
    s.fails(["user", "passwd"], "petrel: missing required argument 'address'", "pw\n"),
    s.fails(["user", "add", "carol@localhost", "--password-stdin"], "petrel: Password cannot contain control characters (line breaks, tabs, NUL, escapes)", "a\tb\n"),
    s.fails(["user", "add", "carol@localhost", "--password-stdin"], "petrel: Password cannot contain control characters (line breaks, tabs, NUL, escapes)", "a\x1b[31mb\n"),
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
    s.fails(["alias", "add", "postmaster@localhost", "carol@localhost", "ALICE@localhost", "--force"], "petrel: Alias postmaster@localhost already points to alice@localhost"),
    s.fails(["alias", "add", "x@localhost", "carol@localhost"], "petrel: carol@localhost is not a local user, alias or list; add it first, or pass --force"),
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
  await s.ok(["user", "add", "alice@localhost", "--password-stdin"], "pw\n");
  await s.ok(["user", "add", "bob@example.test", "--password-stdin"], "pw\n");

  assert.deepEqual(await s.ok(["list", "add", "staff@localhost", "alice@localhost", "bob@example.test"]), ["added 2 members to list staff@localhost"]);
  assert.deepEqual(await s.ok(["list", "add", "Staff@LOCALHOST", "carol@remote.example"]), ["added 1 member to list staff@localhost"]);
  assert.deepEqual(await s.ok(["list", "show", "staff@localhost"]), ["alice@localhost", "bob@example.test", "carol@remote.example"]);

  await Promise.all([
    s.fails(["list", "add", "staff@localhost", "dave@localhost", "alice@localhost", "--force"], "petrel: alice@localhost is already a member of staff@localhost"),
    s.fails(["list", "del", "staff@localhost", "bob@example.test", "nobody@localhost"], "petrel: nobody@localhost is not a member of staff@localhost"),
    s.fails(["list", "show", "nolist@localhost"], "petrel: No such list nolist@localhost"),
    s.fails(["list", "del", "nolist@localhost"], "petrel: No such list nolist@localhost"),
    s.fails(["list", "add", "staff@localhost", "dave@localhost"], "petrel: dave@localhost is not a local user, alias or list; add it first, or pass --force"),
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

test("petrel --version prints the package version", async () => {
  const pkg = JSON.parse(fs.readFileSync(fileURLToPath(new URL("../../package.json", import.meta.url)), "utf8")) as { version: string };
  for (const flag of ["--version", "-V"]) {
    const r = await petrel([flag]);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, `petrel ${pkg.version}\n`);
    assert.equal(r.stderr, "");
  }
});

test("list list (and list show without a list) names every list with its size", async (t) => {
  const s = sandbox();
  t.after(() => cleanup(s));
  assert.deepEqual(await s.ok(["list", "list"]), []);
  await s.ok(["user", "add", "alice@localhost", "--password-stdin"], "pw\n");
  await s.ok(["list", "add", "staff@localhost", "alice@localhost", "far@remote.example"]);
  await s.ok(["list", "add", "all@example.test", "alice@localhost"]);
  assert.deepEqual(await s.ok(["list", "list"]), ["all@example.test\t1 member", "staff@localhost\t2 members"]);
  assert.deepEqual(await s.ok(["list", "show"]), ["all@example.test\t1 member", "staff@localhost\t2 members"]);
});

test("aliases and lists refuse local targets that do not exist, unless --force; catch-all aliases", async (t) => {
  const s = sandbox();
  t.after(() => cleanup(s));
  await s.ok(["user", "add", "alice@localhost", "--password-stdin"], "pw\n");
  await s.fails(["list", "add", "team@localhost", "alice@localhost", "ghost@localhost"], "petrel: ghost@localhost is not a local user, alias or list; add it first, or pass --force");
  await s.fails(["alias", "add", "fwd@localhost", "ghost@localhost"], "petrel: ghost@localhost is not a local user, alias or list; add it first, or pass --force");
  assert.deepEqual(await s.ok(["list", "list"]), []);
  assert.deepEqual(await s.ok(["list", "add", "team@localhost", "alice@localhost", "ghost@localhost", "--force"]), ["added 2 members to list team@localhost"]);
  // alice+news@ reaches alice@ with the default delimiter "+".
  assert.deepEqual(await s.ok(["alias", "add", "news@localhost", "alice+news@localhost"]), ["added alias news@localhost -> alice+news@localhost"]);
  assert.deepEqual(await s.ok(["alias", "add", "@Example.TEST", "alice@localhost"]), ["added alias @example.test -> alice@localhost"]);
  assert.deepEqual(await s.ok(["alias", "list"]), ["@example.test -> alice@localhost", "news@localhost -> alice+news@localhost"]);
  await s.fails(["alias", "add", "@elsewhere.org", "alice@localhost"], "petrel: Domain elsewhere.org is not local (local domains: localhost, example.test)");
  assert.deepEqual(await s.ok(["alias", "del", "@example.test"]), ["deleted alias @example.test"]);
});

test("user del takes the user out of lists and aliases and says so", async (t) => {
  const s = sandbox();
  t.after(() => cleanup(s));
  await s.ok(["user", "add", "alice@localhost", "--password-stdin"], "pw\n");
  await s.ok(["user", "add", "bob@localhost", "--password-stdin"], "pw\n");
  await s.ok(["list", "add", "team@localhost", "alice@localhost", "bob@localhost"]);
  await s.ok(["alias", "add", "fwd@localhost", "alice@localhost"]);
  assert.deepEqual(await s.ok(["user", "del", "Alice@localhost"]), [
    "deleted user alice@localhost",
    "removed alice@localhost from list team@localhost",
    "removed alice@localhost from alias fwd@localhost",
  ]);
  assert.deepEqual(await s.ok(["list", "show", "team@localhost"]), ["bob@localhost"]);
  assert.deepEqual(await s.ok(["alias", "list"]), []);
});

test("list add warns on stderr when the list expands past limits.max_expanded_recipients", async (t) => {
  const s = sandbox();
  t.after(() => cleanup(s));
  fs.appendFileSync(s.config, "[limits]\nmax_expanded_recipients = 2\n");
  await s.ok(["list", "add", "big@localhost", "a@remote.example", "b@remote.example"]);
  const r = await s.run(["list", "add", "big@localhost", "c@remote.example"]);
  assert.equal(r.status, 0);
  assert.equal(r.stdout, "added 1 member to list big@localhost\n");
  assert.equal(
    r.stderr,
    "petrel: warning: list big@localhost reaches 3 recipients, more than limits.max_expanded_recipients (2): mail to it is refused until the limit is raised\n",
  );
});

test("20 parallel user add all succeed (BEGIN IMMEDIATE, busy timeout)", async (t) => {
  const s = sandbox();
  t.after(() => cleanup(s));
  const runs = await Promise.all(Array.from({ length: 20 }, (_, i) => s.run(["user", "add", `u${i}@localhost`, "--password-stdin"], "pw\n")));
  for (const [i, r] of runs.entries()) {
    assert.equal(r.stderr, "", `user ${i}`);
    assert.equal(r.status, 0, `user ${i}`);
  }
  assert.equal((await s.ok(["user", "list"])).length, 20);
});

test("a database error is one line, exit 1, no stack trace (SQLITE_BUSY while another process holds the write lock)", async (t) => {
  const s = sandbox();
  t.after(() => cleanup(s));
  await s.ok(["user", "add", "alice@localhost", "--password-stdin"], "pw\n");
  // Hold the write lock in this process longer than the CLI's 5 s busy timeout.
  const holder = new AccountStore(s.dataDir, ["localhost"]);
  t.after(() => holder.close());
  const db = (holder as unknown as { db: { exec(sql: string): void } }).db;
  db.exec("BEGIN IMMEDIATE");
  try {
    const r = await s.run(["user", "add", "bob@localhost", "--password-stdin"], "pw\n");
    assert.equal(r.status, 1);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, "petrel: database error (SQLITE_BUSY): database is locked\n");
  } finally {
    db.exec("ROLLBACK");
  }
});

test("a full disk is one line, exit 1, no stack trace (SQLITE_FULL on a small tmpfs)", async (t) => {
  const s = sandbox();
  let mounted: string | null = null;
  // Hooks run in order: unmount before the sandbox is removed.
  t.after(async () => {
    if (mounted) await runProgram("umount", [mounted]);
    cleanup(s);
  });
  if (process.getuid?.() !== 0) return t.skip("needs root to mount a tmpfs");
  const mnt = path.join(s.dir, "small");
  fs.mkdirSync(mnt);
  const mount = await runProgram("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt]);
  if (mount.status !== 0) {
    if (process.env.CI) assert.fail(`mount tmpfs failed under CI: ${mount.stderr}`);
    return t.skip(`cannot mount a tmpfs here: ${mount.stderr.trim()}`);
  }
  mounted = mnt;
  fs.writeFileSync(s.config, `data_dir = ${JSON.stringify(path.join(mnt, "data"))}\ndomains = ["localhost"]\n`);
  await s.ok(["user", "add", "alice@localhost", "--password-stdin"], "pw\n");
  // Fill the tmpfs, then free 64 KB: enough to open the database (its -shm), not to write 2,000 members.
  let filler = 0;
  try {
    for (;;) fs.writeFileSync(path.join(mnt, `fill${filler++}`), Buffer.alloc(4096));
  } catch {
    // ENOSPC: full
  }
  for (let i = 0; i < 16; i++) fs.rmSync(path.join(mnt, `fill${i}`));
  const r = await s.run(["list", "add", "big@localhost", ...Array.from({ length: 2000 }, (_, i) => `member-with-a-long-name-${i}@remote.example`)]);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /^petrel: database error \(SQLITE_FULL\): database or disk is full\n$/);
});

test("files are private: data_dir 0700, petrel.db 0600, even under umask 022", async (t) => {
  const s = sandbox();
  t.after(() => cleanup(s));
  const r = await runProgram("sh", ["-c", `umask 022; exec "$0" "$1" user add alice@localhost --password-stdin --config "$2"`, process.execPath, BIN, s.config], { input: "pw\n" });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(fs.statSync(s.dataDir).mode & 0o777, 0o700);
  for (const f of fs.readdirSync(s.dataDir)) assert.equal(fs.statSync(path.join(s.dataDir, f)).mode & 0o777, 0o600, f);
  // An old install with wide modes is narrowed, and the CLI says so on stderr.
  fs.chmodSync(s.dataDir, 0o755);
  fs.chmodSync(path.join(s.dataDir, "petrel.db"), 0o644);
  const again = await s.run(["user", "list"]);
  assert.equal(again.stdout, "alice@localhost\n");
  assert.match(again.stderr, /^petrel: made data_dir private: .*data was readable by others \(mode 755\); changed to 700\npetrel: made data_dir private: .*petrel\.db was readable by others \(mode 644\); changed to 600\n$/);
  assert.equal(fs.statSync(s.dataDir).mode & 0o777, 0o700);
});

test("config search: --config, then PETREL_CONFIG, then ./petrel.toml; announced on stderr when not named here", async (t) => {
  const s = sandbox();
  t.after(() => cleanup(s));
  await s.ok(["user", "add", "alice@localhost", "--password-stdin"], "pw\n");
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-cwd-"));
  t.after(() => fs.rmSync(elsewhere, { recursive: true, force: true }));
  const env = { ...process.env, PETREL_CONFIG: s.config };

  const viaEnv = await runProgram(process.execPath, [BIN, "user", "list"], { cwd: elsewhere, env });
  assert.equal(viaEnv.status, 0, viaEnv.stderr);
  assert.equal(viaEnv.stdout, "alice@localhost\n");
  assert.equal(viaEnv.stderr, `petrel: using config ${s.config} (from PETREL_CONFIG)\n`);

  // --config wins over PETREL_CONFIG, and is not announced (the operator just typed it).
  const other = sandbox();
  t.after(() => cleanup(other));
  await other.ok(["user", "add", "zed@localhost", "--password-stdin"], "pw\n");
  const viaFlag = await runProgram(process.execPath, [BIN, "user", "list", "--config", other.config], { cwd: elsewhere, env });
  assert.equal(viaFlag.stdout, "zed@localhost\n");
  assert.equal(viaFlag.stderr, "");

  // ./petrel.toml beats nothing, but PETREL_CONFIG beats ./petrel.toml.
  const viaCwdAndEnv = await runProgram(process.execPath, [BIN, "user", "list"], { cwd: other.dir, env });
  assert.equal(viaCwdAndEnv.stdout, "alice@localhost\n");
});

test("without any config file the CLI refuses to create ./data, and says which defaults it used", async (t) => {
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-cwd-"));
  t.after(() => fs.rmSync(elsewhere, { recursive: true, force: true }));
  const env = { ...process.env };
  delete env.PETREL_CONFIG;
  if (fs.existsSync("/etc/petrel/petrel.toml")) return t.skip("/etc/petrel/petrel.toml exists on this machine");
  const data = fs.realpathSync(elsewhere) + "/data";
  const r = await runProgram(process.execPath, [BIN, "user", "add", "alice@localhost", "--password-stdin"], { cwd: elsewhere, env, input: "pw\n" });
  assert.equal(r.status, 1);
  assert.equal(r.stdout, "");
  assert.equal(
    r.stderr,
    "petrel: no config file (--config, PETREL_CONFIG, ./petrel.toml, /etc/petrel/petrel.toml): using built-in defaults, data_dir " +
      `${data}\npetrel: data_dir ${data} does not exist; pass --config FILE or set PETREL_CONFIG (petrel serve creates it on first start)\n`,
  );
  assert.equal(fs.existsSync(data), false);
  // Once it exists (the server ran here), the defaults are used, and said so.
  fs.mkdirSync(data, { mode: 0o700 });
  const ok = await runProgram(process.execPath, [BIN, "user", "add", "alice@localhost", "--password-stdin"], { cwd: elsewhere, env, input: "pw\n" });
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout, "added user alice@localhost\n");
  assert.match(ok.stderr, /^petrel: no config file .*using built-in defaults, data_dir .*\n$/);
});

test("an unusable data_dir is one line, for the CLI and for serve", async (t) => {
  const s = sandbox();
  t.after(() => cleanup(s));
  const file = path.join(s.dir, "not-a-folder");
  fs.writeFileSync(file, "");
  fs.writeFileSync(s.config, `data_dir = ${JSON.stringify(file)}\n[listen]\nsmtp = ["127.0.0.1:0"]\npop3 = []\n`);
  await s.fails(["user", "list"], `petrel: Cannot use data_dir ${file}: not a folder`);
  const serve = await s.run(["serve"]);
  assert.equal(serve.status, 1);
  assert.equal(serve.stderr, `petrel: cannot start: Cannot use data_dir ${file}: not a folder\n`);
});

test("config validation: names, addresses, files, timers, listeners", async (t) => {
  const s = sandbox();
  t.after(() => cleanup(s));
  const data = `data_dir = ${JSON.stringify(s.dataDir)}\n`;
  const invalid = async (toml: string, why: RegExp, args = ["user", "list"]) => {
    fs.writeFileSync(s.config, data + toml);
    const r = await s.run(args);
    assert.equal(r.status, 1, toml);
    assert.equal(r.stdout, "", toml);
    assert.equal(lines(r.stderr).length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^petrel: Invalid config ${escape(s.config)}: ${why.source}`), toml);
  };
  await invalid('domains = ["example.com", "bad domain"]\n', /domains\.1: expected a domain name like example\.com \(no spaces, @ or \/\)/);
  await invalid('domains = ["a@b.com"]\n', /domains\.0: expected a domain name/);
  await invalid('domains = ["a/b.com"]\n', /domains\.0: expected a domain name/);
  await invalid(`domains = ["${"a".repeat(64)}.com"]\n`, /domains\.0: expected a domain name/);
  await invalid('hostname = "mx .example.com"\n', /hostname: expected a host name/);
  await invalid('[limits]\nper_ip_exceptions = ["10.0.0.0/33"]\n', /limits\.per_ip_exceptions\.0: expected an IP address or network like/);
  await invalid('[smtp]\nauth_without_tls = "always"\n', /smtp\.auth_without_tls/);
  await invalid('[delivery]\nsmarthost_username = "u"\nsmarthost_password = "p"\nsmarthost_password_file = "/etc/hostname"\n', /delivery\.smarthost_password and delivery\.smarthost_password_file: give one of them, not both/);
  await invalid('[delivery]\nsmarthost_username = "u"\nsmarthost_password_file = "/nonexistent/pw"\n', /delivery\.smarthost_password_file: cannot read \/nonexistent\/pw: ENOENT/);
  await invalid('[delivery]\nsmarthost_password = "p"\n', /delivery\.smarthost_username: needed with a smarthost password/);
  await invalid('[delivery]\nrequire_tls_domains = ["not a domain"]\n', /delivery\.require_tls_domains\.0: expected a domain name/);
  await invalid('[pop3]\nplaintext_login = "sometimes"\n', /pop3\.plaintext_login/);
  await invalid(`hostname = "${"a".repeat(64)}.example.com"\n`, /hostname: labels \(between dots\) are at most 63 characters/);
  await invalid(`hostname = "${"abcdefghi.".repeat(26)}com"\n`, /hostname: at most 253 characters/);
  await invalid('[delivery]\nsmarthost = "not a host"\n', /delivery\.smarthost: expected "host:port"/);
  await invalid('[delivery]\nsmarthost = "relay.example.com:99999"\n', /delivery\.smarthost: expected a host name or IP address and a port 1-65535/);
  await invalid('[dns]\nservers = ["not-an-ip"]\n', /dns\.servers\.0: expected an IP address with an optional port/);
  await invalid('[dns]\nservers = ["1.2.3.4:0"]\n', /dns\.servers\.0: expected an IP address/);
  await invalid(`[tls]\ncert = "missing.pem"\nkey = "missing.key"\n`, new RegExp(`tls\\.cert: cannot read ${escape(path.join(s.dir, "missing.pem"))}: ENOENT`));
  fs.writeFileSync(path.join(s.dir, "c.pem"), "");
  await invalid(`[tls]\ncert = "c.pem"\n`, /tls\.cert and tls\.key go together: give both or neither/);
  await invalid("[limits]\ncommand_timeout = 2147484\n", /limits\.command_timeout: .*at most 2147483 seconds \(about 24\.8 days, the longest timer Node\.js can set\)/);
  await invalid("[pop3]\nauth_failure_delay = 1e12\n", /pop3\.auth_failure_delay: .*at most 2147483 seconds/);
  await invalid('[smtp]\nrecipient_delimiter = "a"\n', /smtp\.recipient_delimiter: expected one punctuation character/);

  // Valid forms pass.
  fs.writeFileSync(s.config, `${data}domains = ["Example.COM"]\n[delivery]\nsmarthost = "[::1]:587"\n[dns]\nservers = ["127.0.0.1", "127.0.0.1:5353", "[::1]:53", "::1"]\n`);
  assert.deepEqual(await s.ok(["user", "list"]), []);

  // No listener at all: serve refuses at start.
  fs.writeFileSync(s.config, `${data}[listen]\nsmtp = []\nsubmission = []\nsubmissions = []\npop3 = []\npop3s = []\n`);
  const none = await s.run(["serve"]);
  assert.equal(none.status, 1);
  assert.equal(none.stderr, "petrel: cannot start: no listeners configured: every list in [listen] is empty\n");
});

test("serve keeps files private: data_dir 0700, petrel.db and its -wal/-shm 0600, Maildir folders 0700", async (t) => {
  const server = await startTestServer();
  t.after(() => server.stop());
  const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);
  assert.equal(mode(server.dataDir), "700");
  for (const f of ["petrel.db", "petrel.db-wal", "petrel.db-shm"]) assert.equal(mode(path.join(server.dataDir, f)), "600", f);
  // A delivery creates mailboxes/ under the server's umask 077.
  const c = await RawSmtp.connect(server.smtpPort);
  try {
    for (const [line, code] of [["", 220], ["EHLO client.test", 250], ["MAIL FROM:<a@client.test>", 250], ["RCPT TO:<postmaster@localhost>", 250], ["DATA", 354], ["Subject: x\r\n\r\nhi\r\n.", 250]] as const) {
      if (line) c.write(line + "\r\n");
      assert.equal((await c.reply()).code, code, line);
    }
  } finally {
    c.close();
  }
  assert.equal(mode(path.join(server.dataDir, "mailboxes")), "700");
  assert.equal(mode(path.join(server.dataDir, "mailboxes", "localhost", "postmaster", "new")), "700");
});
