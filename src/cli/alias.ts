// petrel alias add|del|list: manages aliases, local addresses that forward to one or more targets
// (local or remote), and catch-alls ("@example.com": any unknown local part of that domain). Adding
// to an existing alias appends targets; every change is one store transaction, so a bad target leaves
// the alias as it was. Local targets must exist unless --force.
import type { Command } from "commander";
import { CONFIG_HELP, oneLineErrors, shown, withStore, type ConfigOption } from "./context.js";

interface ForceOption extends ConfigOption {
  readonly force?: boolean;
}

export function registerAlias(program: Command): void {
  const alias = oneLineErrors(program.command("alias").description("manage aliases (forwarding addresses) and catch-alls"));

  alias
    .command("add")
    .description("add an alias, or more targets to an existing one; @domain is the domain's catch-all")
    .argument("<alias>", "local address, e.g. postmaster@example.com, or @example.com for a catch-all")
    .argument("<targets...>", "addresses mail to the alias goes to")
    .option("--force", "allow local targets that are not (yet) a user, alias or list")
    .option("--config <file>", CONFIG_HELP)
    .action(async (name: string, targets: string[], opts: ForceOption) => {
      await withStore(opts, (store, config) => store.addAlias(name, targets, { force: opts.force === true, delimiter: config.smtp.recipient_delimiter }));
      console.log(`added alias ${shown(name)} -> ${targets.map(shown).join(", ")}`);
    });

  alias
    .command("del")
    .description("delete an alias and all its targets")
    .argument("<alias>", "local address, or @domain")
    .option("--config <file>", CONFIG_HELP)
    .action(async (name: string, opts: ConfigOption) => {
      await withStore(opts, (store) => store.deleteAlias(name));
      console.log(`deleted alias ${shown(name)}`);
    });

  alias
    .command("list")
    .description("list aliases, one per line: alias -> target, target")
    .option("--config <file>", CONFIG_HELP)
    .action(async (opts: ConfigOption) => {
      const aliases = await withStore(opts, (store) => store.listAliases());
      for (const a of aliases) console.log(`${a.alias} -> ${a.targets.join(", ")}`);
    });
}
