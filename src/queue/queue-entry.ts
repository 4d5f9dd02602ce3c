// A queue entry for off-site recipients: the message file <queue>/messages/<id>.eml and a small
// versioned record per message, <queue>/envelopes/<id>.json, with one state per recipient (the
// relay of the outbound issue updates it). Both are written under <queue>/tmp/ and renamed into place
// by the spool's commit, envelope last: an .eml without its envelope is a temporary state only.
import path from "node:path";
import type { Reply } from "../core/reply.js";

export type RecipientState =
  | { readonly kind: "scheduled" }
  | { readonly kind: "delivered"; readonly reply: Reply }
  | { readonly kind: "deferred"; readonly reply: Reply }
  | { readonly kind: "failed"; readonly reply: Reply };

/** RFC 3461 requests kept with the entry: RET/ENVID for the message, NOTIFY/ORCPT per queued recipient. */
export interface QueueDsn {
  readonly ret?: "FULL" | "HDRS";
  readonly envid?: string;
  /** Keyed by queued recipient: NOTIFY as "NEVER" or "SUCCESS,FAILURE,DELAY"; ORCPT as "type;address". */
  readonly recipients: Readonly<Record<string, { readonly notify?: string; readonly orcpt?: string }>>;
}

export interface QueueRecipient {
  readonly to: string;
  /** RFC 3461 NOTIFY ("NEVER" or "SUCCESS,FAILURE,DELAY") and ORCPT ("rfc822;x@y"), when requested. */
  readonly notify?: string;
  readonly orcpt?: string;
  readonly state: RecipientState;
  readonly attempts: number;
  /** ISO time of the next attempt; null while none is planned. */
  readonly next_attempt: string | null;
}

export interface QueueEnvelope {
  readonly version: 2;
  readonly id: string;
  /** Reverse-path; "" for the null sender. */
  readonly sender: string;
  readonly received: string;
  readonly recipients: readonly QueueRecipient[];
  /** RFC 3461 RET and ENVID, when the client gave them. */
  readonly ret?: "FULL" | "HDRS";
  readonly envid?: string;
  /**
   * How the message came in (the spool's Envelope source): the relay DKIM-signs only what our own users
   * and Petrel sent (submission, local, bounce), never mail from outside forwarded by an alias or list.
   * Absent in entries written before it was recorded.
   */
  readonly source?: QueueSource;
}

export type QueueSource = "smtp" | "submission" | "local" | "bounce";

export function queueEnvelope(id: string, sender: string, receivedAt: Date, recipients: readonly string[], dsn?: QueueDsn, source?: QueueSource): QueueEnvelope {
  return {
    version: 2,
    id,
    sender,
    received: receivedAt.toISOString(),
    ...(source ? { source } : {}),
    ...(dsn?.ret ? { ret: dsn.ret } : {}),
    ...(dsn?.envid ? { envid: dsn.envid } : {}),
    recipients: recipients.map((to) => ({ to, ...(dsn?.recipients[to] ?? {}), state: { kind: "scheduled" }, attempts: 0, next_attempt: receivedAt.toISOString() })),
  };
}

/** Where the parts of a queue entry live, temporary and final. */
export interface QueuePaths {
  readonly tmpDir: string;
  readonly messageTmp: string;
  readonly message: string;
  readonly envelopeTmp: string;
  readonly envelope: string;
}

export function queuePaths(queueDir: string, id: string): QueuePaths {
  const tmpDir = path.join(queueDir, "tmp");
  return {
    tmpDir,
    messageTmp: path.join(tmpDir, `${id}.eml`),
    message: path.join(queueDir, "messages", `${id}.eml`),
    envelopeTmp: path.join(tmpDir, `${id}.json`),
    envelope: path.join(queueDir, "envelopes", `${id}.json`),
  };
}

export const QUEUE_FOLDERS = ["tmp", "messages", "envelopes"] as const;

/**
 * RFC 3461 §4.1: whether the sender asked to hear of this recipient's event ("FAILURE" or "DELAY");
 * no NOTIFY means the default (failures and delays are reported), NOTIFY=NEVER means nothing is.
 */
export function wantsNotice(envelope: QueueEnvelope, to: string, event: "FAILURE" | "DELAY"): boolean {
  const notify = envelope.recipients.find((r) => r.to === to)?.notify;
  return notify === undefined || notify.split(",").includes(event);
}
