// Resolves a recipient address to the mailboxes and remote addresses it reaches: users directly,
// aliases recursively, lists to their members. A visited set stops loops; a chain deeper than
// MAX_DEPTH counts as a loop (RFC 5321 §3.9 lists and aliases).
import { canonical, parseAddress, type Address } from "../core/address.js";
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
  | { readonly kind: "loop" };

export const MAX_DEPTH = 20;

/**
 * RFC 5321 §4.5.1: postmaster@<every local domain> must be accepted. Without a user or alias of
 * that name, mail for it goes to the Maildir <data_dir>/mailboxes/<domain>/postmaster, which a
 * later `petrel user add postmaster@<domain>` (or any Maildir reader) picks up.
 */
function builtInPostmaster(key: string): Entry | null {
  if (!key.startsWith("postmaster@")) return null;
  return { kind: "user", user: { address: key, name: null, hasApop: false } };
}

export function resolveRecipient(store: AccountStore, address: Address): Resolution {
  if (!store.isLocalDomain(address.domain)) return { kind: "not-local" };
  const key = canonical(address);
  const entry = store.lookup(key) ?? builtInPostmaster(key);
  if (!entry) return { kind: "unknown" };
  const local: string[] = [];
  const remote: string[] = [];
  const visited = new Set<string>([key]);
  let loop = false;

  const walk = (e: Entry, depth: number): void => {
    if (e.kind === "user") {
      if (!local.includes(e.user.address)) local.push(e.user.address);
      return;
    }
    const next = e.kind === "alias" ? e.targets : e.members;
    for (const t of next) {
      if (visited.has(t) || depth >= MAX_DEPTH) {
        loop = true;
        continue;
      }
      visited.add(t);
      const a = parseAddress(t);
      if (!a) continue;
      if (!store.isLocalDomain(a.domain)) {
        if (!remote.includes(t)) remote.push(t);
        continue;
      }
      const child = store.lookup(t);
      if (child) walk(child, depth + 1);
    }
  };
  walk(entry, 0);
  if (local.length === 0 && remote.length === 0) return loop ? { kind: "loop" } : { kind: "unknown" };
  return { kind: "ok", entry, route: { local, remote } };
}
