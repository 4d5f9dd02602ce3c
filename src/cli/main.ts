// The petrel command line: one subcommand group per file (serve, user, alias, list).
// Every command takes --config FILE (default ./petrel.toml when present, else built-in defaults).
import { Command } from "commander";
import { MailError } from "../core/errors.js";
import { registerServe } from "./serve.js";
import { registerUser } from "./user.js";
import { registerAlias } from "./alias.js";
import { registerList } from "./list.js";

const program = new Command("petrel")
  .description("Petrel mail server")
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) });
registerServe(program);
registerUser(program);
registerAlias(program);
registerList(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof MailError) {
    console.error(`petrel: ${err.message}`);
    process.exit(1);
  }
  throw err;
}
