// Resolves a recipient address to the mailboxes and remote addresses it reaches: users directly,
// aliases and lists to their targets, breadth first with one query per alias or list. An address
// with no entry of its own may still reach one by plus-addressing (alice+tag@ → alice@, the
// smtp.recipient_delimiter), as postmaster@ (RFC 5321 §4.5.1), or through the domain's catch-all
// ("@domain" alias). A tree deeper than MAX_DEPTH is refused whole, never delivered in part.
import { foldCase, canonical, parseAddress, type Address } from "../core/address.js";
import type { AccountStore, Entry } from "../store/account-store.js";

export interface Route {
  /** Canonical addresses of local users whose mailboxes get a copy. */
  readonly local: readonly string[];
  /** Off-site addresses the message is forwarded to. */
  readonly remote: readonly string[];
}

export type Resolution =
  | { readonly kind: "ok"; readonly entry: Entry; readonly route: Route }
  | { readonly kind: "not-local" }
  | { readonly kind: "unknown" }
  /** Every branch ends in a cycle: nothing would receive the message. */
  | { readonly kind: "loop" }
  /** Some branch nests deeper than MAX_DEPTH: refused rather than dropped. */
  | { readonly kind: "too-deep" };

export interface ResolverOptions {
  /** smtp.recipient_delimiter; "" turns plus-addressing off. */
  readonly delimiter: string;
}

export const MAX_DEPTH = 20;

/**
 * Without a user or alias of that name, mail for postmaster@<local domain> goes to the Maildir
 * <data_dir>/mailboxes/<domain>/postmaster, which a later `petrel user add postmaster@<domain>`
 * (or any Maildir reader) picks up.
 */
function builtInPostmaster(key: string): Entry {
  return { kind: "user", user: { address: key, name: null, hasApop: false } };
}

export type EntrySource = "exact" | "delimiter" | "postmaster" | "catch-all";

/**
 * The entry a local address reaches, in this order: its own entry; the entry of its part before the
 * delimiter; the built-in postmaster; the domain's catch-all. An exact entry named "alice+tag" wins.
 */
export function findEntry(store: AccountStore, a: Address, opts: ResolverOptions): { entry: Entry; source: EntrySource } | null {
  const key = canonical(a);
  const exact = store.lookup(key);
  if (exact) return { entry: exact, source: "exact" };
  const domain = foldCase(a.domain);
  const cut = opts.delimiter ? a.local.indexOf(opts.delimiter) : -1;
  const base = cut > 0 ? `${foldCase(a.local.slice(0, cut))}@${domain}` : null;
  const viaDelimiter = base === null ? null : store.lookup(base);
  if (viaDelimiter) return { entry: viaDelimiter, source: "delimiter" };
  if (key.startsWith("postmaster@")) return { entry: builtInPostmaster(key), source: "postmaster" };
  if (base?.startsWith("postmaster@")) return { entry: builtInPostmaster(base), source: "postmaster" };
  const catchAll = store.lookup(`@${domain}`);
  return catchAll ? { entry: catchAll, source: "catch-all" } : null;
}

export function resolveRecipient(store: AccountStore, address: Address, opts: ResolverOptions): Resolution {
  if (!store.isLocalDomain(address.domain)) return { kind: "not-local" };
  const found = findEntry(store, address, opts);
  if (!found) return { kind: "unknown" };
  const { entry } = found;
  const local = new Set<string>();
  const remote = new Set<string>();
  const visited = new Set<string>([canonical(address)]);
  let loop = false;
  let frontier: { kind: "alias" | "list"; address: string }[] = [];
  const reach = (e: Entry): void => {
    if (e.kind === "user") local.add(e.user.address);
    else if (!visited.has(e.address)) {
      visited.add(e.address);
      frontier.push({ kind: e.kind, address: e.address });
    } else loop = true;
  };
  if (entry.kind === "user") local.add(entry.user.address);
  else {
    visited.add(entry.address);
    frontier.push({ kind: entry.kind, address: entry.address });
  }
  for (let depth = 0; frontier.length > 0; depth++) {
    // A level past the limit still has aliases or lists to open: refuse the whole tree.
    if (depth >= MAX_DEPTH) return { kind: "too-deep" };
    const level = frontier;
    frontier = [];
    for (const node of level) {
      for (const t of store.targetsOf(node.kind, node.address)) {
        if (visited.has(t.address)) {
          loop = true;
          continue;
        }
        visited.add(t.address);
        const a = parseAddress(t.address);
        if (!a) continue;
        if (!store.isLocalDomain(a.domain)) remote.add(t.address);
        else if (t.kind === "user") local.add(t.address);
        else if (t.kind !== null) frontier.push({ kind: t.kind, address: t.address });
        else {
          // A local target with no entry of its own: plus-addressing, postmaster or the catch-all.
          const via = findEntry(store, a, opts);
          if (via) reach(via.entry);
        }
      }
    }
  }
  if (local.size === 0 && remote.size === 0) return loop ? { kind: "loop" } : { kind: "unknown" };
  return { kind: "ok", entry, route: { local: [...local], remote: [...remote] } };
}
