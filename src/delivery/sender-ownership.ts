// Which envelope senders an authenticated user may use on submission (RFC 6409 §6.1): their own
// address (plus-addressed too), or an alias whose chain of aliases reaches them. Lists, catch-alls and
// the built-in postmaster belong to nobody. Trusts the account store; the sender comes from the client.
import { foldCase, parseAddress } from "../core/address.js";
import type { AccountStore } from "../store/account-store.js";
import { MAX_DEPTH, findEntry, type ResolverOptions } from "./recipient-resolver.js";

export class SenderOwnership {
  constructor(
    private readonly store: AccountStore,
    private readonly opts: ResolverOptions,
  ) {}

  /**
   * True when `user` (the authenticated account) may send as `sender` (MAIL FROM without "<>").
   * The null sender "" is allowed: auto-replies and vacation notices use it, and it names no one.
   */
  mayUseSender(user: string, sender: string): boolean {
    if (sender === "") return true;
    const a = parseAddress(sender);
    if (!a || !this.store.isLocalDomain(a.domain)) return false;
    const account = foldCase(user);
    const found = findEntry(this.store, a, this.opts);
    // A catch-all or the built-in postmaster receives for addresses nobody holds: sending as them is not ownership.
    if (!found || (found.source !== "exact" && found.source !== "delimiter")) return false;
    const { entry } = found;
    if (entry.kind === "user") return entry.user.address === account;
    if (entry.kind === "list") return false;
    return this.aliasReaches(entry.address, account);
  }

  /** Breadth first through aliases only: a list on the way is a list, not the user's own name. */
  private aliasReaches(alias: string, account: string): boolean {
    const visited = new Set<string>([alias]);
    let frontier = [alias];
    for (let depth = 0; frontier.length > 0 && depth < MAX_DEPTH; depth++) {
      const level = frontier;
      frontier = [];
      for (const node of level) {
        for (const t of this.store.targetsOf("alias", node)) {
          if (t.kind === "user") {
            if (t.address === account) return true;
            continue;
          }
          const next = t.kind === "alias" ? t.address : t.kind === null ? this.viaDelimiter(t.address) : null;
          if (next === null) continue;
          if (next === account) return true;
          if (!visited.has(next) && this.store.lookup(next)?.kind === "alias") {
            visited.add(next);
            frontier.push(next);
          }
        }
      }
    }
    return false;
  }

  /** A local target with no entry of its own (alice+sales@): the user or alias its base names, if any. */
  private viaDelimiter(target: string): string | null {
    const a = parseAddress(target);
    if (!a || !this.store.isLocalDomain(a.domain)) return null;
    const found = findEntry(this.store, a, this.opts);
    if (found?.source !== "delimiter") return null;
    return found.entry.kind === "user" ? found.entry.user.address : found.entry.kind === "alias" ? found.entry.address : null;
  }
}
