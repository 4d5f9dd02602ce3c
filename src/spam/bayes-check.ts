// The built-in Bayes classifier as a MessageCheck (trust/message-check.ts), name "bayes": at the end of
// DATA it reads the first MAX_SCAN_BYTES of the staged message, scores it against the token database
// ([spam] bayes_scope: global, or each recipient's own) and adds X-Spam-Status / X-Spam-Score. Spam goes
// to Junk; ham and unsure are delivered (unsure is tagged "class=unsure" for the user's own filters).
// A database with too few trained messages gives no verdict ("Unknown ... (untrained)"). Never throws: a
// broken database or read is logged and the message accepted, "Unknown ... (error)". Skips submission.
import type { Config } from "../config/schema.js";
import type { Logger } from "../core/log.js";
import { canonical, parseAddress } from "../core/address.js";
import type { CheckContext, CheckResult, MessageCheck, MessageCheckRun, StagedMessage } from "../trust/message-check.js";
import { classifyTokens, DEFAULT_SETTINGS, isTrained, type BayesResult, type BayesSettings } from "./bayes/bayes-filter.js";
import { bayesDatabasePath, TokenStore } from "./bayes/token-store.js";
import { MAX_SCAN_BYTES, tokenize } from "./bayes/tokenizer.js";

export interface BayesCheckOptions {
  readonly dataDir: string;
  readonly scope: "global" | "per-user";
  readonly settings: BayesSettings;
  readonly log: Logger;
  /**
   * Per-user scope: whose database an RCPT address uses (null: nobody's). The default is the address
   * itself, canonical; main may pass the recipient resolver's answer so aliases and alice+tag@ map to alice@.
   */
  readonly userOf?: (recipient: string) => string | null;
}

/** The [spam] keys of the Bayes classifier. */
export type BayesConfig = Pick<Config["spam"], "bayes" | "bayes_scope" | "bayes_spam_cutoff" | "bayes_ham_cutoff" | "bayes_min_trained">;

/** Open read handles kept at once (per-user scope opens one per recipient). */
const MAX_OPEN_STORES = 32;

export class BayesCheck implements MessageCheck {
  readonly name = "bayes";
  private readonly stores = new Map<string, TokenStore>();

  constructor(private readonly options: BayesCheckOptions) {}

  /** The check [spam] asks for, or null when bayes = false. */
  static fromConfig(config: { readonly data_dir: string; readonly spam: BayesConfig }, log: Logger): BayesCheck | null {
    const s = config.spam;
    if (!s.bayes) return null;
    return new BayesCheck({
      dataDir: config.data_dir,
      scope: s.bayes_scope,
      settings: bayesSettings(s),
      log,
    });
  }

  start(ctx: CheckContext): MessageCheckRun | null {
    if (ctx.authenticated) return null;
    // The content is read again from the staged copy at the end: nothing to keep while it streams.
    return {
      write: () => {},
      finish: (message) => this.finish(ctx, message),
      abort: () => {},
    };
  }

  /** Closes the database handles (server shutdown, config reload). */
  close(): void {
    for (const store of this.stores.values()) store.close();
    this.stores.clear();
  }

  private async finish(ctx: CheckContext, message: StagedMessage): Promise<CheckResult> {
    try {
      const stores = this.storesFor(ctx.recipients);
      const trained = stores.filter((s) => isTrained(s, this.options.settings));
      if (trained.length === 0) return unknown("untrained");
      // Our own Received line goes first, as in the stored copies the filter was trained on: the client's
      // reverse DNS ("unknown", "may be forged") and HELO count toward the score.
      const head = await readHead(message.open(), MAX_SCAN_BYTES);
      const tokens = await tokenize(Buffer.concat([Buffer.from(`Received: ${ctx.receivedFrom}\r\n`, "latin1"), head]));
      // Per-user scope with several recipients: one verdict for all copies, so the most lenient
      // database decides (a message is junk only when every trained recipient's database says spam).
      let best: BayesResult | null = null;
      for (const store of trained) {
        const r = classifyTokens(store, tokens, this.options.settings);
        if (r.kind === "classified" && (best === null || best.kind !== "classified" || r.score < best.score)) best = r;
      }
      const r = best ?? { kind: "untrained", totals: { spam: 0, ham: 0 } };
      if (r.kind === "classified") this.options.log.debug({ id: ctx.id, check: "bayes", score: r.score, class: r.verdict }, "bayes classified");
      return result(r, this.options.settings.cutoffs.spam);
    } catch (err) {
      this.options.log.warn({ id: ctx.id, check: "bayes", err }, "bayes check failed; message accepted untagged by it");
      return unknown("error");
    }
  }

  private storesFor(recipients: readonly string[]): TokenStore[] {
    if (this.options.scope === "global") {
      const s = this.store(bayesDatabasePath(this.options.dataDir, null));
      return s ? [s] : [];
    }
    const users = new Set<string>();
    for (const rcpt of recipients) {
      const user = this.options.userOf ? this.options.userOf(rcpt) : defaultUser(rcpt);
      if (user !== null) users.add(user);
    }
    return [...users].flatMap((u) => this.store(bayesDatabasePath(this.options.dataDir, u)) ?? []);
  }

  /** A cached read handle; none while the database does not exist (checked again next time). */
  private store(file: string): TokenStore | null {
    const cached = this.stores.get(file);
    if (cached) {
      // Most recently used last, so the oldest is evicted first.
      this.stores.delete(file);
      this.stores.set(file, cached);
      return cached;
    }
    const opened = TokenStore.openForReading(file);
    if (opened === null) return null;
    this.stores.set(file, opened);
    if (this.stores.size > MAX_OPEN_STORES) {
      const [oldest, handle] = this.stores.entries().next().value as [string, TokenStore];
      handle.close();
      this.stores.delete(oldest);
    }
    return opened;
  }
}

/** The verdict settings of a [spam] block (the server's and the CLI's). */
export function bayesSettings(spam: BayesConfig): BayesSettings {
  return { ...DEFAULT_SETTINGS, cutoffs: { ham: spam.bayes_ham_cutoff, spam: spam.bayes_spam_cutoff }, minTrained: spam.bayes_min_trained };
}

function defaultUser(recipient: string): string | null {
  const a = parseAddress(recipient);
  return a ? canonical(a) : null;
}

/**
 * The headers and verdict for a result, in the form the rspamd check writes (rspamd-check.ts):
 * "Yes|No, score=S required=R engine=bayes class=C" and X-Spam-Score, or "Unknown" with no verdict.
 */
export function result(r: BayesResult, spamCutoff: number): CheckResult {
  if (r.kind === "untrained") return unknown("untrained");
  const score = r.score.toFixed(4);
  const spam = r.verdict === "spam";
  return {
    headers: [`X-Spam-Status: ${spam ? "Yes" : "No"}, score=${score} required=${spamCutoff.toFixed(4)} engine=bayes class=${r.verdict}\r\n`, `X-Spam-Score: ${score}\r\n`],
    verdict: spam ? { kind: "junk", reason: `bayes score ${score}` } : { kind: "accept" },
  };
}

function unknown(why: "untrained" | "error"): CheckResult {
  return { headers: [`X-Spam-Status: Unknown, engine=bayes (${why})\r\n`], verdict: { kind: "accept" } };
}

/** The first `limit` octets of a stream (less when it is shorter); the stream is destroyed after. */
export async function readHead(stream: NodeJS.ReadableStream, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      chunks.push(buf);
      size += buf.length;
      if (size >= limit) break;
    }
  } finally {
    const destroyable = stream as NodeJS.ReadableStream & { destroy?: () => void };
    destroyable.destroy?.();
  }
  return Buffer.concat(chunks).subarray(0, limit);
}
