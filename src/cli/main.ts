// The petrel command line: one subcommand group per file (serve, user, alias, list, queue, sendmail, spam, dkim).
// Run through a link named "sendmail" it is `petrel sendmail`, through one named "mailq" `petrel queue
// list` (argv[1]'s basename). sendmail's options are not commander's: it is dispatched before parsing.
// Every command takes --config FILE (else $PETREL_CONFIG, ./petrel.toml, /etc/petrel/petrel.toml,
// built-in defaults). Files are created private (umask 077): the database holds password hashes.
// Expected failures (bad input, a locked or full database, an unusable folder) print one line.
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { Command } from "commander";
import { MailError } from "../core/errors.js";
import { registerServe } from "./serve.js";
import { registerUser } from "./user.js";
import { registerAlias } from "./alias.js";
import { registerList } from "./list.js";
import { registerQueue } from "./queue.js";
import { registerSendmail, runSendmail } from "./sendmail.js";
import { registerSpam } from "./spam.js";
import { registerDkim } from "./dkim.js";

process.umask(0o077);

const invokedAs = path.basename(process.argv[1] ?? "");
const argv = [...process.argv];
if (invokedAs === "sendmail") argv.splice(2, 0, "sendmail");
else if (invokedAs === "mailq") argv.splice(2, 0, "queue", "list");
if (argv[2] === "sendmail") process.exit(await runSendmail(argv.slice(3)));

const pkg = JSON.parse(fs.readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };

const program = new Command("petrel")
  .description("Petrel mail server")
  .version(`petrel ${pkg.version}`, "-V, --version", "print the version")
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) });
registerServe(program);
registerUser(program);
registerAlias(program);
registerList(program);
registerQueue(program);
registerSendmail(program);
registerSpam(program);
registerDkim(program);

try {
  await program.parseAsync(argv);
} catch (err) {
  const line = oneLine(err);
  if (line === null) throw err;
  console.error(`petrel: ${line}`);
  process.exit(1);
}

/** The one line an expected failure prints; null for a bug, which keeps its stack trace. */
function oneLine(err: unknown): string | null {
  if (err instanceof MailError) return err.message;
  // SQLITE_BUSY (another writer held the lock past the busy timeout), SQLITE_FULL, SQLITE_IOERR...
  if (err instanceof Database.SqliteError) return `database error (${err.code}): ${err.message}`;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (err instanceof Error && typeof code === "string" && /^E[A-Z]+$/.test(code)) return err.message;
  return null;
}
