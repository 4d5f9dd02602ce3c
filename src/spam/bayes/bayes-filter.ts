// The Bayes filter as its users see it (the SMTP check, the CLI, the IMAP move hook): train a message
// as spam or ham, classify a message. Ties the tokenizer, the token store and the classifier together;
// a database with fewer than minTrained messages of either class gives no verdict ("untrained").
// Trusts the store it is given; the message may be anything (the tokenizer bounds the work).
import { classify, DEFAULT_PARAMS, type BayesParams, type Classification, type Cutoffs, type TrainedTotals } from "./classifier.js";
import type { LearnOutcome, TokenStore, TrainClass } from "./token-store.js";
import { messageDigest, tokenize } from "./tokenizer.js";

export interface BayesSettings {
  readonly cutoffs: Cutoffs;
  /** Trained messages needed in each class before a verdict ([spam] bayes_min_trained). */
  readonly minTrained: number;
  readonly params: BayesParams;
}

/** The [spam] config defaults (cutoffs chosen with the parameters, see classifier.ts). */
export const DEFAULT_SETTINGS: BayesSettings = { cutoffs: { ham: 0.1, spam: 0.9 }, minTrained: 200, params: DEFAULT_PARAMS };

export type BayesResult =
  | { readonly kind: "untrained"; readonly totals: TrainedTotals }
  | ({ readonly kind: "classified"; readonly totals: TrainedTotals } & Classification);

/** Scores a message against a store (null: no database yet, so untrained). */
export async function classifyMessage(store: TokenStore | null, raw: Buffer, settings: BayesSettings): Promise<BayesResult> {
  if (store === null) return { kind: "untrained", totals: { spam: 0, ham: 0 } };
  if (!isTrained(store, settings)) return { kind: "untrained", totals: store.totals() };
  return classifyTokens(store, await tokenize(raw), settings);
}

/** Whether a store has enough of both classes for verdicts. */
export function isTrained(store: TokenStore, settings: BayesSettings): boolean {
  const totals = store.totals();
  return totals.spam >= settings.minTrained && totals.ham >= settings.minTrained;
}

/** Scores already tokenized content (one tokenizing for several per-user stores). */
export function classifyTokens(store: TokenStore, tokens: readonly string[], settings: BayesSettings): BayesResult {
  const totals = store.totals();
  if (totals.spam < settings.minTrained || totals.ham < settings.minTrained) return { kind: "untrained", totals };
  return { kind: "classified", totals, ...classify(tokens, store.counts(tokens), totals, settings.params, settings.cutoffs) };
}

/** A message made ready for training: tokenized (async, outside any transaction) with its digest. */
export interface PreparedMessage {
  readonly digest: string;
  readonly tokens: readonly string[];
}

export async function prepareMessage(raw: Buffer): Promise<PreparedMessage> {
  return { digest: messageDigest(raw), tokens: await tokenize(raw) };
}

/** Trains one prepared message (its own transaction, or the caller's store.transaction). */
export function trainPrepared(store: TokenStore, message: PreparedMessage, cls: TrainClass): LearnOutcome {
  return store.learn(message.digest, message.tokens, cls);
}

/** Trains prepared messages in one transaction. */
export function trainBatch(store: TokenStore, messages: readonly PreparedMessage[], cls: TrainClass): LearnOutcome[] {
  return store.learnMany(messages, cls);
}

/** Tokenizes and trains one message. */
export async function trainMessage(store: TokenStore, raw: Buffer, cls: TrainClass): Promise<LearnOutcome> {
  return trainPrepared(store, await prepareMessage(raw), cls);
}

/** Takes a message's training back (false: it was never trained). */
export async function unlearnMessage(store: TokenStore, raw: Buffer): Promise<boolean> {
  const m = await prepareMessage(raw);
  return store.unlearn(m.digest, m.tokens);
}
