// petrel list add|del|show|list: manages mailing lists, local addresses whose mail goes to every member.
// Deleting the last member deletes the list; a missing list or member is an error and changes nothing,
// because each change is one store transaction. Local members must exist unless --force; a list that
// expands past limits.max_expanded_recipients is added with a warning on stderr (mail to it is refused).
import type { Command } from "commander";
import { parseAddress } from "../core/address.js";
import { resolveRecipient } from "../delivery/recipient-resolver.js";
import { CONFIG_HELP, note, oneLineErrors, shown, withStore, type ConfigOption } from "./context.js";

interface ForceOption extends ConfigOption {
  readonly force?: boolean;
}

export function registerList(program: Command): void {
  const list = oneLineErrors(program.command("list").description("manage mailing lists"));

  list
    .command("add")
    .description("add members to a list, creating it if needed")
    .argument("<list>", "local address of the list")
    .argument("<members...>", "member addresses")
    .option("--force", "allow local members that are not (yet) a user, alias or list")
    .option("--config <file>", CONFIG_HELP)
    .action(async (name: string, members: string[], opts: ForceOption) => {
      const expanded = await withStore(opts, (store, config) => {
        const delimiter = config.smtp.recipient_delimiter;
        store.addListMembers(name, members, { force: opts.force === true, delimiter });
        const r = resolveRecipient(store, parseAddress(name)!, { delimiter });
        return { size: r.kind === "ok" ? r.route.local.length + r.route.remote.length : 0, max: config.limits.max_expanded_recipients };
      });
      console.log(`added ${plural(members.length, "member")} to list ${shown(name)}`);
      if (expanded.size > expanded.max)
        note(`warning: list ${shown(name)} reaches ${expanded.size} recipients, more than limits.max_expanded_recipients (${expanded.max}): mail to it is refused until the limit is raised`);
    });

  list
    .command("del")
    .description("remove members from a list, or the whole list when no members are given")
    .argument("<list>", "local address of the list")
    .argument("[members...]", "members to remove")
    .option("--config <file>", CONFIG_HELP)
    .action(async (name: string, members: string[], opts: ConfigOption) => {
      await withStore(opts, (store) => store.deleteList(name, members));
      const key = shown(name);
      console.log(members.length === 0 ? `deleted list ${key}` : `removed ${plural(members.length, "member")} from list ${key}`);
    });

  list
    .command("show")
    .description("show a list's members, one per line; without a list, every list and its size")
    .argument("[list]", "local address of the list")
    .option("--config <file>", CONFIG_HELP)
    .action(async (name: string | undefined, opts: ConfigOption) => {
      if (name === undefined) return printLists(opts);
      const members = await withStore(opts, (store) => store.listMembers(name));
      for (const m of members) console.log(m);
    });

  list
    .command("list")
    .description("list every list, one per line: address, tab, number of members")
    .option("--config <file>", CONFIG_HELP)
    .action((opts: ConfigOption) => printLists(opts));
}

async function printLists(opts: ConfigOption): Promise<void> {
  const lists = await withStore(opts, (store) => store.listLists());
  for (const l of lists) console.log(`${l.list}\t${plural(l.members.length, "member")}`);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
