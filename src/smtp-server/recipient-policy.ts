// Decides what SMTP says about an address: RCPT TO acceptance (never an open relay), VRFY and EXPN
// (RFC 5321 §3.5, §4.1.1.6-7; codes 250/251/551/553/550/252/502). Reads the account store on every
// call, so CLI changes take effect at once; the session caches decisions per transaction.
// VRFY/EXPN match full addresses or exact local parts unless smtp.vrfy_search allows partial
// names; an ambiguous answer names at most a few candidates.
import { parseAddress, formatAddress, type Address } from "../core/address.js";
import { reply, type Reply } from "../core/reply.js";
import { printable } from "../protocol/wire-text.js";
import { findEntry, resolveRecipient, type Route } from "../delivery/recipient-resolver.js";
import { SenderOwnership } from "../delivery/sender-ownership.js";
import type { AccountStore, Entry } from "../store/account-store.js";

export interface PolicyOptions {
  readonly vrfy: boolean;
  readonly expn: boolean;
  readonly forwardOffsite: boolean;
  /** smtp.vrfy_search: VRFY/EXPN by partial local part or display name (default off). */
  readonly search?: boolean;
  /** The local domains, in config order: where a bare local part is looked up. */
  readonly domains?: readonly string[];
  /** smtp.recipient_delimiter: alice+tag@ reaches alice@; "" turns it off. */
  readonly delimiter: string;
}

/** Candidates named in a 553 "Ambiguous" answer; the rest are only counted. */
export const MAX_CANDIDATES = 5;

export interface RecipientDecision {
  readonly reply: Reply;
  /** Present when the recipient is accepted. */
  readonly route?: Route;
}

/**
 * Decisions already made for one message: 100 RCPTs naming one 5,000-member list expand it once.
 * Valid while the account store is unchanged, so a CLI change still counts from the next RCPT.
 */
export class DecisionCache {
  version = -1;
  readonly decisions = new Map<string, RecipientDecision>();
}

export class RecipientPolicy {
  private readonly senders: SenderOwnership;

  constructor(
    private readonly store: AccountStore,
    private readonly opts: PolicyOptions,
  ) {
    this.senders = new SenderOwnership(store, opts);
  }

  /** mayRelay: the client authenticated (SMTP AUTH), so off-site addresses go to the queue. */
  checkRecipient(a: Address, cache?: DecisionCache, mayRelay = false): RecipientDecision {
    if (!cache) return this.decide(a, mayRelay);
    const version = this.store.dataVersion();
    if (version !== cache.version) {
      cache.decisions.clear();
      cache.version = version;
    }
    // Keyed by the address as given: the reply echoes it.
    const key = formatAddress(a);
    let d = cache.decisions.get(key);
    // mayRelay cannot change within a transaction (AUTH is refused during one), so it needs no key.
    if (!d) cache.decisions.set(key, (d = this.decide(a, mayRelay)));
    return d;
  }

  /** RFC 6409 §6.1: the user's own addresses and aliases reaching them (delivery/sender-ownership.ts). */
  senderAllowed(user: string, sender: string): boolean {
    return this.senders.mayUseSender(user, sender);
  }

  private decide(a: Address, mayRelay: boolean): RecipientDecision {
    const addr = formatAddress(a);
    const r = resolveRecipient(this.store, a, this.opts);
    switch (r.kind) {
      case "not-local":
        // Never an open relay: only an authenticated client reaches other domains (RFC 6409 §4.3).
        if (mayRelay) return { reply: reply(250, "2.1.5", "Ok"), route: { local: [], remote: [addr] } };
        return { reply: reply(554, "5.7.1", `<${addr}>: Relay access denied`) };
      case "unknown":
        return { reply: reply(550, "5.1.1", `<${addr}>: Recipient address rejected: User unknown`) };
      case "loop":
        return { reply: reply(550, "5.4.6", `<${addr}>: Alias or list expansion loops (mail loop)`) };
      case "too-deep":
        return { reply: reply(550, "5.4.6", `<${addr}>: Alias or list nesting too deep`) };
      case "ok": {
        const offsite = this.offsiteForward(r.entry, r.route);
        if (offsite && !this.opts.forwardOffsite) return { reply: reply(551, "5.1.6", `User not local; please try <${offsite}>`) };
        return { reply: reply(250, "2.1.5", "Ok"), route: r.route };
      }
    }
  }

  vrfy(arg: string): Reply {
    if (!this.opts.vrfy) return cannotVrfy();
    const found = this.find(arg);
    if ("code" in found) return found;
    const e = found.entry;
    if (e.kind === "user") return reply(250, "2.1.5", describeUser(e));
    if (e.kind === "alias") {
      const r = resolveRecipient(this.store, parseAddress(e.address)!, this.opts);
      if (r.kind === "ok") {
        const offsite = this.offsiteForward(e, r.route);
        if (offsite)
          return this.opts.forwardOffsite
            ? reply(251, "2.1.5", `User not local; will forward to <${offsite}>`)
            : reply(551, "5.1.6", `User not local; please try <${offsite}>`);
        if (r.route.local.length === 1 && r.route.remote.length === 0) {
          const target = this.store.lookup(r.route.local[0]!);
          if (target) return reply(250, "2.1.5", describe(target));
        }
      }
    }
    return reply(250, "2.1.5", `<${e.address}>`);
  }

  expn(arg: string): Reply {
    if (!this.opts.expn) return reply(502, "5.5.1", "EXPN command not available");
    const found = this.find(arg);
    if ("code" in found) return found;
    const e = found.entry;
    if (e.kind === "user") return reply(550, "5.1.0", "That is a user name, not a mailing list");
    const members = e.kind === "alias" ? e.targets : e.members;
    return reply(250, "2.1.5", ...members.map((m) => {
      const entry = this.store.lookup(m);
      return entry ? describe(entry) : `<${m}>`;
    }));
  }

  /** The single off-site address an alias forwards to, when that is all it does. */
  private offsiteForward(e: Entry, route: Route): string | null {
    return e.kind === "alias" && route.local.length === 0 && route.remote.length === 1 ? route.remote[0]! : null;
  }

  /**
   * Finds the entry a VRFY/EXPN argument names: a full address, or a local part that is exactly
   * some user's, list's or alias's in a local domain; partial and display names with vrfy_search.
   */
  private find(arg: string): { entry: Entry } | Reply {
    let text = arg.trim();
    if (text.startsWith("<") && text.endsWith(">")) text = text.slice(1, -1);
    if (text === "") return reply(501, "5.5.4", "Syntax: VRFY/EXPN address or name");
    if (text.includes("@")) {
      const a = parseAddress(text);
      if (!a) return reply(501, "5.1.3", `Bad address syntax: ${printable(text)}`);
      if (!this.store.isLocalDomain(a.domain)) return reply(550, "5.1.2", `<${printable(text)}>: Not a local domain`);
      const f = findEntry(this.store, a, this.opts);
      if (!f) return reply(550, "5.1.1", `<${printable(text)}>: User unknown`);
      // RCPT would accept it, so 550 would lie; naming the catch-all's target would reveal it.
      if (f.source === "catch-all") return cannotVrfy();
      return { entry: f.entry };
    }
    let candidates: Entry[];
    if (this.opts.search) {
      const { exact, partial } = this.store.search(text);
      candidates = exact.length ? exact : partial;
    } else {
      candidates = this.exactLocalPart(text);
    }
    if (candidates.length === 1) return { entry: candidates[0]! };
    if (candidates.length === 0) return reply(550, "5.1.1", `${printable(text)}: No such user or list`);
    const more = candidates.length - MAX_CANDIDATES;
    return reply(553, "5.1.4", "Ambiguous; possibilities are", ...candidates.slice(0, MAX_CANDIDATES).map(describe), ...(more > 0 ? [`and ${more} more`] : []));
  }

  /**
   * Entries that local@domain names in each local domain, as RCPT would find them (plus-addressing
   * included, a catch-all not): one indexed lookup per domain, no scan.
   */
  private exactLocalPart(local: string): Entry[] {
    const found: Entry[] = [];
    for (const domain of this.opts.domains ?? []) {
      const a = parseAddress(`${local}@${domain}`);
      const f = a && findEntry(this.store, a, this.opts);
      if (f && f.source !== "catch-all") found.push(f.entry);
    }
    return found;
  }
}

function cannotVrfy(): Reply {
  return reply(252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery");
}

function describeUser(e: Extract<Entry, { kind: "user" }>): string {
  return e.user.name ? `${e.user.name} <${e.user.address}>` : `<${e.user.address}>`;
}

function describe(e: Entry): string {
  return e.kind === "user" ? describeUser(e) : `<${e.address}>`;
}
