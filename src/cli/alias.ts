// petrel alias add|del|list: manages aliases, local addresses that forward to one or more targets
// (local or remote). Adding to an existing alias appends targets; every change is one store transaction,
// so a bad target leaves the alias as it was.
import type { Command } from "commander";
import { oneLineErrors, withStore, type ConfigOption } from "./context.js";

export function registerAlias(program: Command): void {
  const alias = oneLineErrors(program.command("alias").description("manage aliases (forwarding addresses)"));

  alias
    .command("add")
    .description("add an alias, or more targets to an existing one")
    .argument("<alias>", "local address, e.g. postmaster@example.com")
    .argument("<targets...>", "addresses mail to the alias goes to")
    .option("--config <file>", "config file (default ./petrel.toml when present)")
    .action(async (name: string, targets: string[], opts: ConfigOption) => {
      await withStore(opts, (store) => store.addAlias(name, targets));
      console.log(`added alias ${name.toLowerCase()} -> ${targets.map((t) => t.toLowerCase()).join(", ")}`);
    });

  alias
    .command("del")
    .description("delete an alias and all its targets")
    .argument("<alias>", "local address")
    .option("--config <file>", "config file (default ./petrel.toml when present)")
    .action(async (name: string, opts: ConfigOption) => {
      await withStore(opts, (store) => store.deleteAlias(name));
      console.log(`deleted alias ${name.toLowerCase()}`);
    });

  alias
    .command("list")
    .description("list aliases, one per line: alias -> target, target")
    .option("--config <file>", "config file (default ./petrel.toml when present)")
    .action(async (opts: ConfigOption) => {
      const aliases = await withStore(opts, (store) => store.listAliases());
      for (const a of aliases) console.log(`${a.alias} -> ${a.targets.join(", ")}`);
    });
}
