// petrel user add|del|list|passwd|name: manages local mailbox users in the AccountStore.
// Passwords arrive on stdin (--password-stdin), never as arguments, so they stay out of `ps` and shell
// history. Bad input is a UsageError printed as one line; the store changes nothing in that case.
import type { Command } from "commander";
import type { User } from "../store/account-store.js";
import { oneLineErrors, readPassword, withStore, type ConfigOption } from "./context.js";

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
    .requiredOption("--password-stdin", "read the password from the first line of stdin")
    .option("--name <name>", "display name")
    .option("--apop", "also keep the password for POP3 APOP (stored in clear)")
    .option("--config <file>", "config file (default ./petrel.toml when present)")
    .action(async (address: string, opts: AddOptions) => {
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
    .option("--config <file>", "config file (default ./petrel.toml when present)")
    .action(async (address: string, opts: ConfigOption) => {
      await withStore(opts, (store) => store.deleteUser(address));
      console.log(`deleted user ${address.toLowerCase()}`);
    });

  user
    .command("list")
    .description("list users: address, display name, and whether APOP is on")
    .option("--config <file>", "config file (default ./petrel.toml when present)")
    .action(async (opts: ConfigOption) => {
      const users = await withStore(opts, (store) => store.listUsers());
      for (const u of users) console.log(formatUser(u));
    });

  user
    .command("passwd")
    .description("set a user's password from the first line of stdin")
    .argument("<address>", "mail address")
    .requiredOption("--password-stdin", "read the password from the first line of stdin")
    .option("--apop", "also keep the password for POP3 APOP (without it APOP is turned off)")
    .option("--config <file>", "config file (default ./petrel.toml when present)")
    .action(async (address: string, opts: PasswordOptions) => {
      await withStore(opts, async (store) => store.setPassword(address, await readPassword(), { apop: opts.apop === true }));
      console.log(`changed password of ${address.toLowerCase()}`);
    });

  user
    .command("name")
    .description('set a user\'s display name ("" clears it)')
    .argument("<address>", "mail address")
    .argument("<name>", "display name")
    .option("--config <file>", "config file (default ./petrel.toml when present)")
    .action(async (address: string, name: string, opts: ConfigOption) => {
      await withStore(opts, (store) => store.setName(address, name === "" ? null : name));
      const key = address.toLowerCase();
      console.log(name === "" ? `cleared name of ${key}` : `set name of ${key} to ${JSON.stringify(name)}`);
    });
}

/** One line: address, then the quoted display name if any, then "apop" if APOP is on; tab separated. */
export function formatUser(u: User): string {
  const fields = [u.address];
  if (u.name !== null) fields.push(JSON.stringify(u.name));
  if (u.hasApop) fields.push("apop");
  return fields.join("\t");
}
