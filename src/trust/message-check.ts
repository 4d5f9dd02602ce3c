// What every check of a received message (SPF/DKIM/DMARC/ARC, rspamd, the Bayes filter) looks like to
// the spool: started with who sent it, fed the content as it streams in, asked at the end of DATA for
// header lines to prepend and a verdict. The spool runs the checks of a message in parallel and combines
// their verdicts (reject beats junk beats accept); a check never throws: a failure is its own verdict.
import type { Reply } from "../core/reply.js";

/** Who sent the message, as the SMTP session saw it. */
export interface CheckContext {
  /** The queue id of the message (Received "id", logs, rspamd's Queue-Id). */
  readonly id: string;
  readonly peerAddress: string;
  /** The EHLO/HELO argument as given. */
  readonly helo: string;
  /** The forward-confirmed PTR name of the client, when it has one (null: none or not confirmed). */
  readonly ptrName: string | null;
  /**
   * The "from …" clause of the Received field this hop writes ("from helo (name [ip] (may be forged))"):
   * what a filter trained on stored copies saw for this hop.
   */
  readonly receivedFrom: string;
  /** Reverse-path; "" for the null sender <>. */
  readonly sender: string;
  /** Accepted RCPT TO addresses, as the client gave them. */
  readonly recipients: readonly string[];
  /** The client authenticated (submission): inbound authentication does not apply. */
  readonly authenticated: boolean;
  readonly tls: boolean;
}

/** What the check wants done with the message as a whole. */
export type CheckVerdict =
  | { readonly kind: "accept" }
  /** Deliver to each local recipient's Junk folder (Maildir++ ".Junk"); off-site copies are tagged only. */
  | { readonly kind: "junk"; readonly reason: string }
  /** Refuse at the end of DATA with this reply (5xx permanent, 4xx temporary). */
  | { readonly kind: "reject"; readonly reply: Reply; readonly reason: string };

export interface CheckResult {
  /** Header fields to prepend to every stored copy, each a complete field ending in CRLF (folded lines allowed). */
  readonly headers: readonly string[];
  readonly verdict: CheckVerdict;
}

/** The message as stored after DATA, for checks that must read it again (an HTTP upload, a tokenizer). */
export interface StagedMessage {
  /** Content size in octets (CRLF line ends, as received, without the headers Petrel adds). */
  readonly size: number;
  /** A fresh read of the content from its start, with CRLF line ends. */
  open(): NodeJS.ReadableStream;
}

export interface MessageCheckRun {
  /** Content as received (dot-unstuffed, CRLF line ends), in order; must not hold on to more than it needs. */
  write(chunk: Buffer): void;
  /** End of DATA. Resolves (never rejects) with headers and verdict. */
  finish(message: StagedMessage): Promise<CheckResult>;
  /** The transaction ended without a message (RSET, error, disconnect): release everything. */
  abort(): void;
}

export interface MessageCheck {
  /** For logs and the "checks" config: "auth", "rspamd", "bayes". */
  readonly name: string;
  /** Null when this check does not apply to this message (e.g. authenticated submission). */
  start(ctx: CheckContext): MessageCheckRun | null;
}

const RANK = { accept: 0, junk: 1, reject: 2 } as const;

/** Combines verdicts: any reject wins (the first one), then junk, else accept. */
export function combineVerdicts(verdicts: readonly CheckVerdict[]): CheckVerdict {
  let best: CheckVerdict = { kind: "accept" };
  for (const v of verdicts) if (RANK[v.kind] > RANK[best.kind]) best = v;
  return best;
}
