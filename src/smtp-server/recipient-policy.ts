// Decides what SMTP says about an address: RCPT TO acceptance (never an open relay), VRFY and EXPN
// (RFC 5321 §3.5, §4.1.1.6-7; codes 250/251/551/553/550/252/502). Reads the account store on every
// call, so CLI changes take effect at once. VRFY/EXPN match full addresses or exact local parts
// unless smtp.vrfy_search allows partial names; an ambiguous answer names at most a few candidates.
import { parseAddress, formatAddress, type Address } from "../core/address.js";
import { reply, type Reply } from "../core/reply.js";
import { printable } from "../protocol/wire-text.js";
import { resolveRecipient, type Route } from "../delivery/recipient-resolver.js";
import type { AccountStore, Entry } from "../store/account-store.js";

export interface PolicyOptions {
  readonly vrfy: boolean;
  readonly expn: boolean;
  readonly forwardOffsite: boolean;
  /** smtp.vrfy_search: VRFY/EXPN by partial local part or display name (default off). */
  readonly search?: boolean;
  /** The local domains, in config order: where a bare local part is looked up. */
  readonly domains?: readonly string[];
}

/** Candidates named in a 553 "Ambiguous" answer; the rest are only counted. */
export const MAX_CANDIDATES = 5;

export interface RecipientDecision {
  readonly reply: Reply;
  /** Present when the recipient is accepted. */
  readonly route?: Route;
}

export class RecipientPolicy {
  constructor(
    private readonly store: AccountStore,
    private readonly opts: PolicyOptions,
  ) {}

  checkRecipient(a: Address): RecipientDecision {
    const addr = formatAddress(a);
    const r = resolveRecipient(this.store, a);
    switch (r.kind) {
      case "not-local":
        return { reply: reply(554, "5.7.1", `<${addr}>: Relay access denied`) };
      case "unknown":
        return { reply: reply(550, "5.1.1", `<${addr}>: Recipient address rejected: User unknown`) };
      case "loop":
        return { reply: reply(550, "5.4.6", `<${addr}>: Alias or list expansion loops`) };
      case "ok": {
        const offsite = this.offsiteForward(r.entry, r.route);
        if (offsite && !this.opts.forwardOffsite) return { reply: reply(551, "5.1.6", `User not local; please try <${offsite}>`) };
        return { reply: reply(250, "2.1.5", "Ok"), route: r.route };
      }
    }
  }

  vrfy(arg: string): Reply {
    if (!this.opts.vrfy) return reply(252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery");
    const found = this.find(arg);
    if ("code" in found) return found;
    const e = found.entry;
    if (e.kind === "user") return reply(250, "2.1.5", describeUser(e));
    if (e.kind === "alias") {
      const r = resolveRecipient(this.store, parseAddress(e.address)!);
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
      const e = this.store.lookup(formatAddress(a));
      return e ? { entry: e } : reply(550, "5.1.1", `<${printable(text)}>: User unknown`);
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

  /** Entries named local@domain for each local domain: one indexed lookup per domain, no scan. */
  private exactLocalPart(local: string): Entry[] {
    const found: Entry[] = [];
    for (const domain of this.opts.domains ?? []) {
      const a = parseAddress(`${local}@${domain}`);
      const e = a && this.store.lookup(formatAddress(a));
      if (e) found.push(e);
    }
    return found;
  }
}

function describeUser(e: Extract<Entry, { kind: "user" }>): string {
  return e.user.name ? `${e.user.name} <${e.user.address}>` : `<${e.user.address}>`;
}

function describe(e: Entry): string {
  return e.kind === "user" ? describeUser(e) : `<${e.address}>`;
}
