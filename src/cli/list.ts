// petrel list add|del|show: manages mailing lists, local addresses whose mail goes to every member.
// Deleting the last member deletes the list; a missing list or member is an error and changes nothing,
// because each change is one store transaction.
import type { Command } from "commander";
import { oneLineErrors, withStore, type ConfigOption } from "./context.js";

export function registerList(program: Command): void {
  const list = oneLineErrors(program.command("list").description("manage mailing lists"));

  list
    .command("add")
    .description("add members to a list, creating it if needed")
    .argument("<list>", "local address of the list")
    .argument("<members...>", "member addresses")
    .option("--config <file>", "config file (default ./petrel.toml when present)")
    .action(async (name: string, members: string[], opts: ConfigOption) => {
      await withStore(opts, (store) => store.addListMembers(name, members));
      console.log(`added ${plural(members.length, "member")} to list ${name.toLowerCase()}`);
    });

  list
    .command("del")
    .description("remove members from a list, or the whole list when no members are given")
    .argument("<list>", "local address of the list")
    .argument("[members...]", "members to remove")
    .option("--config <file>", "config file (default ./petrel.toml when present)")
    .action(async (name: string, members: string[], opts: ConfigOption) => {
      await withStore(opts, (store) => store.deleteList(name, members));
      const key = name.toLowerCase();
      console.log(members.length === 0 ? `deleted list ${key}` : `removed ${plural(members.length, "member")} from list ${key}`);
    });

  list
    .command("show")
    .description("show a list's members, one per line")
    .argument("<list>", "local address of the list")
    .option("--config <file>", "config file (default ./petrel.toml when present)")
    .action(async (name: string, opts: ConfigOption) => {
      const members = await withStore(opts, (store) => store.listMembers(name));
      for (const m of members) console.log(m);
    });
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
