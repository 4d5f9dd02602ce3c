// The relay's DKIM step: the DKIM-Signature fields for a queued message as it leaves (the transport
// sends them in front of the file). Signs only what our own side sent: envelope source submission (an
// authenticated user, and then only a From: in the envelope sender's domain, so one user cannot get
// another domain's signature on a From: of their choosing), local (petrel sendmail, which only the
// data_dir's owner and root may use) and bounces. Mail from outside that an alias or list forwards is
// sent as it came, even with a From: in one of our domains (it may be forged). One signing per message
// serves every attempt and every destination domain for a while (t= keeps the first signing time); a
// failure to sign never stops delivery: the message goes unsigned and the log says why.
import type { Logger } from "../core/log.js";
import type { QueueSource } from "../queue/queue-entry.js";
import type { QueuedMessage } from "../queue/queue-scan.js";
import { parseAddress } from "../core/address.js";
import { signingDomain, type DkimKeyStore } from "./dkim-key-store.js";
import { signMessage, type SignOptions } from "./dkim-signer.js";

/** Sources whose messages are ours to sign. */
export const SIGNED_SOURCES: readonly QueueSource[] = ["submission", "local", "bounce"];
/** Signatures kept for later attempts: how many, how long. */
const CACHE_ENTRIES = 512;
const CACHE_MS = 10 * 60 * 1000;
const EMPTY = Buffer.alloc(0);

/** The envelope sender's domain as a d= value; "" when it has none (which then matches no From:). */
function senderDomain(sender: string): string {
  const a = parseAddress(sender);
  return (a && signingDomain(a.domain)) ?? "";
}

export interface OutboundSignerOptions extends SignOptions {
  readonly keys: DkimKeyStore;
  /** The message as sent (CRLF line ends): queue/queued-content.ts crlfContent. */
  readonly open: (file: string) => AsyncIterable<Buffer>;
  readonly log: Logger;
}

export class OutboundSigner {
  /** By queue id: the signing in progress or done, shared by concurrent attempts for several domains. */
  private readonly cache = new Map<string, { at: number; fields: Promise<Buffer> }>();
  /** Key files already reported as unusable (logged once each, not per message). */
  private readonly reported = new Set<string>();

  constructor(private readonly opts: OutboundSignerOptions) {}

  /** Logs the keys found at start (and each unusable file), so the administrator sees what will sign. Never rejects. */
  async logKeys(): Promise<void> {
    try {
      const { keys, problems } = await this.opts.keys.list();
      for (const p of problems) (this.reported.add(p), this.opts.log.error({ problem: p }, "unusable DKIM key"));
      if (keys.length === 0) this.opts.log.info({ keyDir: this.opts.keys.dir }, "no DKIM keys: mail leaves unsigned (petrel dkim generate DOMAIN makes one)");
      else this.opts.log.info({ keys: keys.map((k) => `${k.domain} ${k.selector} ${k.algorithm}`) }, "DKIM signing keys");
    } catch (err) {
      this.opts.log.error({ keyDir: this.opts.keys.dir, err: (err as Error).message }, "cannot read the DKIM key folder");
    }
  }

  /** The DKIM-Signature fields to send in front of the message (ending in CRLF), or none. Never rejects. */
  fieldsFor(m: QueuedMessage): Promise<Buffer> {
    const source = m.envelope.source;
    if (!source || !SIGNED_SOURCES.includes(source)) return Promise.resolve(EMPTY);
    const now = Date.now();
    const hit = this.cache.get(m.envelope.id);
    if (hit && now - hit.at < CACHE_MS) return hit.fields;
    for (const [id, e] of this.cache) if (this.cache.size >= CACHE_ENTRIES || now - e.at >= CACHE_MS) this.cache.delete(id);
    const fields = this.sign(m);
    this.cache.set(m.envelope.id, { at: now, fields });
    return fields;
  }

  private async sign(m: QueuedMessage): Promise<Buffer> {
    const log = this.opts.log.child({ id: m.envelope.id });
    try {
      const keysFor = async (domain: string) => {
        const found = await this.opts.keys.keysFor(domain);
        for (const p of found.problems) if (!this.reported.has(p)) (this.reported.add(p), log.error({ problem: p }, "unusable DKIM key"));
        return found.keys;
      };
      // Users may put any From: in their mail: only their envelope sender's domain is signed for them.
      const fromDomainMustBe = m.envelope.source === "submission" ? senderDomain(m.envelope.sender) : undefined;
      const r = await signMessage(this.opts.open(m.messagePath), keysFor, { ...this.opts, ...(fromDomainMustBe !== undefined ? { fromDomainMustBe } : {}) });
      if (r.kind === "signed") {
        log.info({ dkim: "signed", domain: r.domain, selectors: r.selectors }, "DKIM-signed");
        return r.fields;
      }
      log.debug({ dkim: "unsigned", reason: r.reason }, "not DKIM-signed");
    } catch (err) {
      // Unreadable key folder, a failed read of the message: send it unsigned rather than not at all.
      log.error({ dkim: "error", err: (err as Error).message }, "DKIM signing failed; sending unsigned");
      this.cache.delete(m.envelope.id);
    }
    return EMPTY;
  }
}
