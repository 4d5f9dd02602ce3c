// petrel user add|del|list|passwd|name: manages local mailbox users in the AccountStore.
// Passwords arrive on stdin (--password-stdin), never as arguments, so they stay out of `ps` and shell
// history. Bad input is a UsageError printed as one line; the store changes nothing in that case.
import type { Command } from "commander";
import { UsageError } from "../core/errors.js";
import type { User } from "../store/account-store.js";
import { CONFIG_HELP, oneLineErrors, readPassword, shown, withStore, type ConfigOption } from "./context.js";

interface PasswordOptions extends ConfigOption {
  readonly passwordStdin?: boolean;
  readonly apop?: boolean;
}

interface AddOptions extends PasswordOptions {
  readonly name?: string;
}

export function registerUser(program: Command): void {
  const user = oneLineErrors(program.command("user").description("manage local users (mailboxes)"));

  user
    .command("add")
    .description("add a user; the password is the first line of stdin")
    .argument("<address>", "mail address, e.g. alice@example.com")
    .option("--password-stdin", "read the password from the first line of stdin (required)")
    .option("--name <name>", "display name")
    .option("--apop", "also keep the password for POP3 APOP (stored in clear)")
    .option("--config <file>", CONFIG_HELP)
    .action(async (address: string, opts: AddOptions) => {
      requirePasswordStdin(opts);
      const added = await withStore(opts, async (store) => {
        const password = await readPassword();
        return store.addUser(address, password, { name: opts.name === "" ? undefined : opts.name, apop: opts.apop === true });
      });
      console.log(`added user ${added.address}`);
    });

  user
    .command("del")
    .description("delete a user")
    .argument("<address>", "mail address")
    .option("--config <file>", CONFIG_HELP)
    .action(async (address: string, opts: ConfigOption) => {
      const removed = await withStore(opts, (store) => store.deleteUser(address));
      const key = shown(address);
      console.log(`deleted user ${key}`);
      for (const l of removed.lists) console.log(`removed ${key} from list ${l}`);
      for (const a of removed.aliases) console.log(`removed ${key} from alias ${a}`);
    });

  user
    .command("list")
    .description("list users: address, display name, and whether APOP is on")
    .option("--config <file>", CONFIG_HELP)
    .action(async (opts: ConfigOption) => {
      const users = await withStore(opts, (store) => store.listUsers());
      for (const u of users) console.log(formatUser(u));
    });

  user
    .command("passwd")
    .description("set a user's password from the first line of stdin")
    .argument("<address>", "mail address")
    .option("--password-stdin", "read the password from the first line of stdin (required)")
    .option("--apop", "also keep the password for POP3 APOP (without it APOP is turned off)")
    .option("--config <file>", CONFIG_HELP)
    .action(async (address: string, opts: PasswordOptions) => {
      requirePasswordStdin(opts);
      await withStore(opts, async (store) => store.setPassword(address, await readPassword(), { apop: opts.apop === true }));
      console.log(`changed password of ${shown(address)}`);
    });

  user
    .command("name")
    .description('set a user\'s display name ("" clears it)')
    .argument("<address>", "mail address")
    .argument("<name>", "display name")
    .option("--config <file>", CONFIG_HELP)
    .action(async (address: string, name: string, opts: ConfigOption) => {
      await withStore(opts, (store) => store.setName(address, name === "" ? null : name));
      const key = shown(address);
      console.log(name === "" ? `cleared name of ${key}` : `set name of ${key} to ${JSON.stringify(name)}`);
    });
}

/**
 * Checked in the action, not by commander: a required option is checked before arguments, so
 * `petrel user add` alone would complain about --password-stdin instead of the missing address.
 */
function requirePasswordStdin(opts: PasswordOptions): void {
  if (!opts.passwordStdin) throw new UsageError("required option '--password-stdin' not specified (the password is the first line of stdin)");
}

/** One line: address, then the quoted display name if any, then "apop" if APOP is on; tab separated. */
export function formatUser(u: User): string {
  const fields = [u.address];
  if (u.name !== null) fields.push(JSON.stringify(u.name));
  if (u.hasApop) fields.push("apop");
  return fields.join("\t");
}
