// Sends the bounce the queue runner asks for (RFC 3464, bounce-message.ts) back through the spool,
// the one way in: a local sender gets it in their Maildir, a remote one through the queue, from the
// null sender (so it can never bounce again, RFC 5321 §4.5.5). The original is streamed from its queue
// file; a bounce that cannot be stored is logged by the runner and the message's failures stay recorded.
import fs from "node:fs";
import type { Logger } from "../core/log.js";
import { replyText, type Reply } from "../core/reply.js";
import type { QueuedMessage } from "../queue/queue-scan.js";
import type { Envelope, IncomingMessage } from "../spool/spool.js";
import { bounceMessage, type BounceRecipient } from "./bounce-message.js";
import type { Bounces, FailedRecipient } from "./queue-runner.js";
import type { Route } from "./recipient-resolver.js";

export interface BounceSenderDeps {
  readonly hostname: string;
  readonly spool: { open(env: Envelope): Promise<IncomingMessage> };
  /** Where the sender's address leads (aliases, lists, or off-site): the policy with relay allowed. */
  readonly routeOf: RouteOf;
  readonly newId: () => string;
  readonly log: Logger;
  /** Called once a bounce for an off-site sender is queued (the scheduler sends it at once). */
  readonly onQueued?: () => void;
}

/** "mx.far.test[192.0.2.1]" → "mx.far.test"; "none" (a routing verdict) → undefined. */
function remoteMta(relay: string): string | undefined {
  if (relay === "none") return undefined;
  const i = relay.indexOf("[");
  return i > 0 ? relay.slice(0, i) : relay;
}

/** Where an address leads when Petrel itself sends (bounces, sendmail's drops), or the reply refusing it. */
export type RouteOf = (address: string) => { route: Route } | { refused: Reply };

/** The message a report is about: a queue entry, or a sendmail drop whose recipients were refused. */
export interface ReportedMessage {
  readonly id: string;
  readonly sender: string;
  readonly received: string;
  readonly ret?: "FULL" | "HDRS";
  readonly envid?: string;
  orcptOf(to: string): string | undefined;
  /** The original content (its headers, or all of it with RET=FULL). */
  open(): NodeJS.ReadableStream;
}

function queued(m: QueuedMessage): ReportedMessage {
  const { envelope } = m;
  return {
    id: envelope.id,
    sender: envelope.sender,
    received: envelope.received,
    ...(envelope.ret ? { ret: envelope.ret } : {}),
    ...(envelope.envid ? { envid: envelope.envid } : {}),
    orcptOf: (to) => envelope.recipients.find((r) => r.to === to)?.orcpt,
    open: () => fs.createReadStream(m.messagePath),
  };
}

export class BounceSender implements Bounces {
  constructor(private readonly deps: BounceSenderDeps) {}

  async bounce(m: QueuedMessage, failed: readonly FailedRecipient[]): Promise<void> {
    await this.report(queued(m), failed, "failed");
  }

  async delayed(m: QueuedMessage, waiting: readonly FailedRecipient[], until: Date): Promise<void> {
    await this.report(queued(m), waiting, "delayed", until);
  }

  /** A bounce for any message (a sendmail drop's refused recipients); the sender must not be <>. */
  async report(m: ReportedMessage, failed: readonly FailedRecipient[], action: "failed" | "delayed", until?: Date): Promise<void> {
    const decided = this.deps.routeOf(m.sender);
    if ("refused" in decided) {
      this.deps.log.warn({ id: m.id, sender: m.sender, reason: replyText(decided.refused) }, "bounce not sent: the sender's address leads nowhere");
      return;
    }
    const { route } = decided;
    const now = new Date();
    const recipients: BounceRecipient[] = failed.map((f) => ({
      finalRecipient: f.to,
      ...(m.orcptOf(f.to) ? { originalRecipient: m.orcptOf(f.to)! } : {}),
      action,
      ...(until ? { willRetryUntil: until } : {}),
      status: f.reply.enhanced ?? (f.reply.code >= 500 ? "5.0.0" : "4.0.0"),
      ...(remoteMta(f.relay) ? { remoteMta: remoteMta(f.relay)! } : {}),
      diagnostic: replyText(f.reply),
      lastAttempt: now,
    }));
    const id = this.deps.newId();
    const msg = await this.deps.spool.open({
      id,
      sender: "",
      source: "bounce",
      recipients: [{ address: m.sender, route }],
      helo: this.deps.hostname,
      peerAddress: "127.0.0.1",
      hostname: this.deps.hostname,
      protocol: "local",
      receivedAt: now,
    });
    try {
      for await (const piece of bounceMessage({
        reportingMta: this.deps.hostname,
        queueId: m.id,
        arrivalDate: new Date(m.received),
        sender: m.sender,
        recipients,
        ret: m.ret ?? "HDRS",
        ...(m.envid ? { envid: m.envid } : {}),
        original: () => m.open(),
        postmaster: `MAILER-DAEMON@${this.deps.hostname}`,
        now,
      }))
        await msg.write([piece]);
      await msg.commit();
    } catch (err) {
      await msg.abort();
      throw err;
    }
    this.deps.log.info({ id, original: m.id, to: m.sender, [action]: failed.map((f) => f.to) }, action === "failed" ? "bounce sent to the sender" : "delay notice sent to the sender");
    if (route.remote.length) this.deps.onQueued?.();
  }
}
