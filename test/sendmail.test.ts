// End-to-end tests of `petrel sendmail` and `petrel queue list`/`mailq`: the real bin/petrel with the
// message on stdin, no server running. Checks the file it leaves in data_dir/maildrop/new (envelope
// line + message), exit codes from sysexits.h with one stderr line, peak memory for a 20 MB message,
// the links named sendmail and mailq, and who may write (another user gets 77; root's file goes to
// data_dir's owner). The user tests run only as root (they switch to nobody with a copy of node).
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runProgram, type ProgramRun } from "./helpers/run.js";
import { PETREL_BIN } from "./helpers/server.js";

type Run = ProgramRun;

interface RunOptions {
  readonly input?: string | Buffer;
  readonly uid?: number;
  readonly gid?: number;
  /** The program to run; default: node bin/petrel. */
  readonly argv0?: readonly string[];
}

interface Sandbox {
  readonly dir: string;
  readonly config: string;
  readonly dataDir: string;
  run(args: readonly string[], opts?: RunOptions): Promise<Run>;
  /** The files in maildrop/new, parsed: envelope and content. */
  dropped(): { envelope: Record<string, unknown>; content: string; file: string }[];
}

function sandbox(extraToml = ""): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-sendmail-"));
  fs.chmodSync(dir, 0o755);
  const dataDir = path.join(dir, "data");
  fs.mkdirSync(dataDir, { mode: 0o700 });
  const config = path.join(dir, "petrel.toml");
  fs.writeFileSync(config, `data_dir = ${JSON.stringify(dataDir)}\nhostname = "mail.example.test"\ndomains = ["example.test"]\n${extraToml}`, { mode: 0o644 });
  return {
    dir,
    config,
    dataDir,
    run: (args, opts = {}) => runPetrel(args, { cwd: dir, env: { ...process.env, PETREL_CONFIG: config } }, opts),
    dropped() {
      const newDir = path.join(dataDir, "maildrop", "new");
      return fs.readdirSync(newDir).map((name) => {
        const file = path.join(newDir, name);
        const text = fs.readFileSync(file, "utf8");
        const nl = text.indexOf("\n");
        return { envelope: JSON.parse(text.slice(0, nl)) as Record<string, unknown>, content: text.slice(nl + 1), file };
      });
    },
  };
}

function runPetrel(args: readonly string[], base: { cwd: string; env: NodeJS.ProcessEnv }, opts: RunOptions): Promise<Run> {
  const [cmd, ...pre] = opts.argv0 ?? [process.execPath, PETREL_BIN];
  return runProgram(cmd!, [...pre, ...args], { ...base, input: opts.input, uid: opts.uid, gid: opts.gid, timeoutMs: 30_000 });
}

/** Expects exit `status`, nothing on stdout, exactly one stderr line matching `line`, and no file dropped. */
async function fails(s: Sandbox, args: string[], input: string, status: number, line: RegExp): Promise<void> {
  const r = await s.run(["sendmail", ...args], { input });
  assert.equal(r.status, status, `exit status; stderr: ${r.stderr}`);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, line);
  assert.equal(r.stderr.split("\n").length, 2, `one stderr line: ${r.stderr}`);
  assert.ok(!fs.existsSync(path.join(s.dataDir, "maildrop", "new")) || s.dropped().length === 0, "no message dropped");
}

const isRoot = process.getuid?.() === 0;

test("-t: recipients from To, Cc and Bcc plus the arguments; Bcc removed; From, Date, Message-ID added; no server needed", async () => {
  const s = sandbox();
  const input = "To: Bob <bob@example.org>, carol@example.org\nCc: \"Dave, D.\" <dave@example.net>\nBcc: secret@example.net,\n  root\nSubject: cron output\n\nline 1\n..line 2\n";
  const r = await s.run(["sendmail", "-t", "extra@example.com"], { input });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, "");
  const [m] = s.dropped();
  const user = os.userInfo().username;
  assert.deepEqual(m!.envelope.recipients, ["extra@example.com", "bob@example.org", "carol@example.org", "dave@example.net", "secret@example.net", "root@mail.example.test"]);
  assert.equal(m!.envelope.sender, `${user}@mail.example.test`);
  assert.equal(m!.envelope.user, user);
  assert.equal(m!.envelope.uid, process.getuid?.());
  assert.match(
    m!.content,
    new RegExp(
      `^To: Bob <bob@example.org>, carol@example.org\nCc: "Dave, D." <dave@example.net>\nSubject: cron output\nFrom: ${user}@mail.example.test\nDate: \\w{3}, \\d+ \\w{3} \\d{4} \\d\\d:\\d\\d:\\d\\d [+-]\\d{4}\nMessage-ID: <[a-z0-9]+\\.[0-9a-f]{16}@mail\\.example\\.test>\n\nline 1\n\\.\\.line 2\n$`,
    ),
  );
  assert.doesNotMatch(m!.content, /secret|Bcc/i);
  assert.deepEqual(fs.readdirSync(path.join(s.dataDir, "maildrop", "tmp")), [], "nothing left in tmp/");
});

test("-f sets the envelope sender (and the From we add), -F the full name; CRLF input keeps CRLF", async () => {
  const s = sandbox();
  const r = await s.run(["sendmail", "-F", "Jo Q. Public", "-fjo@example.test", "a@example.org"], { input: "Subject: s\r\n\r\nbody\r\n" });
  assert.equal(r.status, 0, r.stderr);
  const [m] = s.dropped();
  assert.equal(m!.envelope.sender, "jo@example.test");
  assert.deepEqual(m!.envelope.recipients, ["a@example.org"]);
  assert.match(m!.content, /^Subject: s\r\nFrom: "Jo Q\. Public" <jo@example\.test>\r\nDate: [^\r\n]+\r\nMessage-ID: <[^\r\n]+>\r\n\r\nbody\r\n$/);
  const nul = sandbox();
  assert.equal((await nul.run(["sendmail", "-f", "<>", "a@example.org"], { input: "From: me@example.test\n\nx\n" })).status, 0);
  assert.equal(nul.dropped()[0]!.envelope.sender, "");
});

test("present From, Date and Message-ID are kept; a message without final line end gets one", async () => {
  const s = sandbox();
  const input = "From: me@example.test\nDate: Mon, 1 Jan 2026 00:00:00 +0000\nMessage-ID: <1@example.test>\n\nno newline";
  assert.equal((await s.run(["sendmail", "a@example.org"], { input })).status, 0);
  assert.equal(s.dropped()[0]!.content, `${input}\n`);
});

test("without -i a lone '.' ends the message; with -i or -oi it is content", async () => {
  const input = "Subject: dots\n\nbefore\n.\nafter\n";
  for (const [flags, body] of [
    [[], "before\n"],
    [["-i"], "before\n.\nafter\n"],
    [["-oi"], "before\n.\nafter\n"],
  ] as const) {
    const s = sandbox();
    const r = await s.run(["sendmail", ...flags, "a@example.org"], { input });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(s.dropped()[0]!.content.endsWith(`\n\n${body}`), `${flags.join(" ")}: ${s.dropped()[0]!.content}`);
  }
});

test("exit codes: 64 no recipients or a bad option, 65 a bad address, 78 a bad or missing config or data_dir, 73 a maildrop that cannot be created", async () => {
  const s = sandbox();
  await fails(s, [], "Subject: x\n\nx\n", 64, /^sendmail: no recipients given/);
  await fails(s, ["-t"], "Subject: x\n\nx\n", 64, /^sendmail: no recipients: none given and none in To, Cc or Bcc\n$/);
  await fails(s, ["-q", "a@example.org"], "x\n", 64, /^sendmail: unsupported option -q\n$/);
  await fails(s, ["a@@example.org"], "x\n", 65, /^sendmail: bad recipient address: a@@example\.org\n$/);
  await fails(s, ["-t"], "To: <a@example.org\n\nx\n", 65, /^sendmail: bad to header: unclosed </);
  await fails(s, ["-f", "me@", "a@example.org"], "x\n", 65, /^sendmail: bad sender address: me@\n$/);
  await fails(s, ["a@example.org"], " starts with a space\n", 65, /^sendmail: message starts with white space\n$/);

  await fails(s, ["a@example.org"], `X-Long: ${"a".repeat(1024 * 1024 + 10)}\n\nx\n`, 65, /^sendmail: header section longer than 1048576 bytes\n$/);
  const small = sandbox("[limits]\nmax_message_size = 1000\n");
  await fails(small, ["a@example.org"], `Subject: s\n\n${"x".repeat(2000)}\n`, 65, /^sendmail: message larger than limits\.max_message_size \(1000 bytes\)\n$/);
  fs.appendFileSync(s.config, "no_such_key = 1\n");
  await fails(s, ["a@example.org"], "x\n", 78, /^sendmail: Invalid config .*unknown key no_such_key\n$/);
  const gone = sandbox();
  fs.rmSync(gone.dataDir, { recursive: true });
  await fails(gone, ["a@example.org"], "x\n", 78, /^sendmail: data_dir .* does not exist \(petrel serve creates it on its first start\)\n$/);
  const blocked = sandbox();
  fs.writeFileSync(path.join(blocked.dataDir, "maildrop"), "a file where the folder goes");
  const r = await blocked.run(["sendmail", "a@example.org"], { input: "x\n" });
  assert.equal(r.status, 73, r.stderr);
  assert.match(r.stderr, /^sendmail: cannot create the message file: ENOTDIR \(.*maildrop\/tmp\)\n$/);
});

test("a 20 MB message is streamed: the child's peak RSS grows by less than 15 MB over a one-line message", async (t) => {
  if (!fs.existsSync("/usr/bin/time")) return t.skip("/usr/bin/time is not installed");
  const s = sandbox("[limits]\nmax_message_size = 30000000\n");
  const peak = async (input: Buffer): Promise<number> => {
    const r = await s.run(["sendmail", "-v", "a@example.org"], { input, argv0: ["/usr/bin/time", "-v", PETREL_BIN] });
    assert.equal(r.status, 0, r.stderr);
    return Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)![1]) * 1024;
  };
  const small = await peak(Buffer.from("Subject: small\n\nx\n"));
  const line = Buffer.from(`${"x".repeat(76)}\n`);
  const big = Buffer.concat([Buffer.from("Subject: big\n\n"), ...Array<Buffer>(Math.ceil((20 * 1024 * 1024) / line.length)).fill(line)]);
  const large = await peak(big);
  t.diagnostic(`peak RSS: one line ${(small / 2 ** 20).toFixed(1)} MB, 20 MB message ${(large / 2 ** 20).toFixed(1)} MB`);
  assert.ok(large - small < 15 * 2 ** 20, `peak grew by ${((large - small) / 2 ** 20).toFixed(1)} MB`);
  const files = s.dropped().map((m) => m.content.length).sort((a, b) => a - b);
  assert.ok(files[1]! > big.length, "the big message is complete (plus the headers we add)");
});

test("links named sendmail and mailq run `petrel sendmail` and `petrel queue list`", async () => {
  const s = sandbox();
  const sendmailLink = path.join(s.dir, "sendmail");
  const mailqLink = path.join(s.dir, "mailq");
  fs.symlinkSync(PETREL_BIN, sendmailLink);
  fs.symlinkSync(PETREL_BIN, mailqLink);
  const empty = await s.run([], { argv0: [mailqLink] });
  assert.equal(empty.status, 0, empty.stderr);
  assert.equal(empty.stdout, "Mail queue is empty\n");
  const r = await s.run(["-oi", "-t"], { argv0: [sendmailLink], input: "To: bob@example.org, carol@example.org\nSubject: s\n\nx\n" });
  assert.equal(r.status, 0, r.stderr);
  const id = s.dropped()[0]!.file.split("/").pop()!;
  // A queue entry as the spool writes it, with one recipient deferred.
  const q = path.join(s.dataDir, "queue");
  for (const d of ["messages", "envelopes"]) fs.mkdirSync(path.join(q, d), { recursive: true });
  fs.writeFileSync(path.join(q, "messages", "Q1.eml"), "Subject: q\n\nbody\n");
  const env = {
    version: 2,
    id: "Q1",
    sender: "",
    received: new Date(Date.now() - 3_600_000).toISOString(),
    recipients: [
      { to: "x@remote.test", state: { kind: "scheduled" }, attempts: 0, next_attempt: null },
      { to: "y@remote.test", state: { kind: "deferred", reply: { code: 451, enhanced: "4.3.0", lines: ["try later"] } }, attempts: 2, next_attempt: "2026-11-30T13:00:00.000Z" },
    ],
  };
  fs.writeFileSync(path.join(q, "envelopes", "Q1.json"), JSON.stringify(env));
  const list = await s.run([], { argv0: [mailqLink] });
  assert.equal(list.status, 0, list.stderr);
  const lines = list.stdout.split("\n");
  assert.match(lines[0]!, /^ID +WHERE +SIZE +AGE +SENDER$/);
  assert.match(lines[1]!, new RegExp(`^${id.replace(/\./g, "\\.")} +maildrop +\\d+ +\\d+s +${os.userInfo().username}@mail\\.example\\.test$`));
  assert.equal(lines[2], "    bob@example.org  waiting for pickup");
  assert.equal(lines[3], "    carol@example.org  waiting for pickup");
  assert.match(lines[4]!, /^Q1 +queue +17 +1h00m +<>$/);
  assert.equal(lines[5], "    x@remote.test  scheduled (0 attempts)");
  assert.equal(lines[6], "    y@remote.test  deferred (2 attempts, next 2026-11-30T13:00:00.000Z): 451 4.3.0 try later");
  assert.equal(lines[7], "-- 2 messages");
  const same = await s.run(["queue", "list"]);
  const ageless = (text: string) => text.replace(/ \d+s /g, " Ns ");
  assert.equal(ageless(same.stdout), ageless(list.stdout), "the same table through petrel queue list");
});

/** A copy of node that another user can run (the one in /root/.cache is not reachable for them). */
function nodeForOthers(dir: string): string {
  const copy = path.join(dir, "node");
  fs.copyFileSync(process.execPath, copy);
  fs.chmodSync(copy, 0o755);
  return copy;
}

test("another user than data_dir's owner gets EX_NOPERM (77); the owner with an unwritable data_dir gets 73", { skip: !isRoot && "needs root to run as nobody" }, async () => {
  const s = sandbox();
  const node = nodeForOthers(s.dir);
  const asNobody = { uid: 65534, gid: 65534, argv0: [node, PETREL_BIN], input: "Subject: s\n\nx\n" };
  const r = await s.run(["sendmail", "a@example.org"], asNobody);
  assert.equal(r.status, 77, r.stderr);
  assert.match(r.stderr, /^sendmail: only root and the owner of data_dir .* \(uid 0\) may send mail this way; you are uid 65534\n$/);
  assert.ok(!fs.existsSync(path.join(s.dataDir, "maildrop")));
  fs.chownSync(s.dataDir, 65534, 65534);
  fs.chmodSync(s.dataDir, 0o500);
  const ro = await s.run(["sendmail", "a@example.org"], asNobody);
  assert.equal(ro.status, 73, ro.stderr);
  assert.match(ro.stderr, /^sendmail: cannot create the message file: EACCES/);
});

test("root dropping into a data_dir owned by another user gives the folders and the file to that user", { skip: !isRoot && "needs root" }, async () => {
  const s = sandbox();
  fs.chownSync(s.dataDir, 65534, 65534);
  const r = await s.run(["sendmail", "a@example.org"], { input: "Subject: s\n\nx\n" });
  assert.equal(r.status, 0, r.stderr);
  const [m] = s.dropped();
  for (const p of [path.join(s.dataDir, "maildrop"), path.join(s.dataDir, "maildrop", "new"), path.join(s.dataDir, "maildrop", "tmp"), m!.file]) {
    const st = fs.statSync(p);
    assert.deepEqual([st.uid, st.gid], [65534, 65534], p);
  }
  assert.equal(m!.envelope.uid, 0);
  // nobody (the server's user here) can read it back with the queue listing.
  const node = nodeForOthers(s.dir);
  const list = await s.run(["queue", "list"], { uid: 65534, gid: 65534, argv0: [node, PETREL_BIN] });
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout, /a@example\.org  waiting for pickup/);
});
