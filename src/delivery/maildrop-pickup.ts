// Takes what `petrel sendmail` dropped into data_dir/maildrop/new/ (queue/maildrop.ts) into the spool,
// the one way in (source "local"): recipients resolved like an authenticated client's (local users,
// aliases, lists; other domains to the queue), the content streamed from the file. The dropped file is
// removed in the same turn of the event loop as the spool's ack (as the SMTP session writes its 250
// there), so a kill can only fall between two syscalls; after a power loss the removal may be undone
// and the message delivered twice (RFC 1047's window, as for SMTP). Recipients the policy refuses get
// a bounce to the sender (RFC 3464, like Postfix's "User unknown" from pickup), queued before the
// message. A file that does not parse is moved aside to maildrop/bad/ and logged, never retried forever.
import fsp from "node:fs/promises";
import path from "node:path";
import type { Logger } from "../core/log.js";
import { replyText } from "../core/reply.js";
import { listMaildrop, maildropDir, openDropped, removeDropped, removeDroppedNow, syncDropFolder, MaildropFormatError, type DroppedMessage } from "../queue/maildrop.js";
import type { AcceptedRecipient, Envelope, IncomingMessage } from "../spool/spool.js";
import type { ReportedMessage, RouteOf } from "./bounce-sender.js";
import type { FailedRecipient } from "./queue-runner.js";

export interface PickupDeps {
  readonly dataDir: string;
  readonly hostname: string;
  readonly spool: { open(env: Envelope): Promise<IncomingMessage> };
  /** Where an address leads for a local sender (relay allowed), or the reply refusing it. */
  readonly routeOf: RouteOf;
  /** Sends the bounce for refused recipients (BounceSender.report); without it they are only logged. */
  readonly report?: (m: ReportedMessage, failed: readonly FailedRecipient[], action: "failed") => Promise<void>;
  readonly newId: () => string;
  readonly log: Logger;
  /** Told when a picked-up message has off-site recipients (the scheduler sends it at once). */
  readonly onQueued?: () => void;
}

export class MaildropPickup {
  private running: Promise<number> | null = null;

  constructor(private readonly deps: PickupDeps) {}

  /** Picks up everything waiting; concurrent calls share one pass. Returns how many were taken. */
  run(): Promise<number> {
    this.running ??= this.pass().finally(() => (this.running = null));
    return this.running;
  }

  private async pass(): Promise<number> {
    let taken = 0;
    for (const entry of await listMaildrop(this.deps.dataDir)) {
      try {
        if (await this.take(entry.path)) taken++;
      } catch (err) {
        if (err instanceof MaildropFormatError) await this.setAside(entry.path, err);
        else this.deps.log.error({ err, file: entry.path }, "cannot pick up a dropped message; will retry");
      }
    }
    return taken;
  }

  private async take(file: string): Promise<boolean> {
    const dropped = await openDropped(file);
    const env = dropped.envelope;
    const recipients: AcceptedRecipient[] = [];
    const refused: FailedRecipient[] = [];
    for (const to of env.recipients) {
      const r = this.deps.routeOf(to);
      if ("route" in r) recipients.push({ address: to, route: r.route });
      else {
        refused.push({ to, reply: r.refused, relay: "none" });
        this.deps.log.warn({ id: env.id, user: env.user, to, reason: replyText(r.refused) }, "sendmail recipient refused");
      }
    }
    try {
      if (refused.length) await this.bounceRefused(dropped, refused);
    } catch (err) {
      dropped.content.destroy();
      throw err;
    }
    if (recipients.length === 0) {
      dropped.content.destroy();
      this.deps.log.warn({ id: env.id, user: env.user, sender: env.sender }, "dropped message has no deliverable recipient; removed");
      await removeDropped(file);
      return false;
    }
    const id = this.deps.newId();
    const msg = await this.deps.spool.open({
      id,
      sender: env.sender,
      recipients,
      helo: env.user,
      peerAddress: "127.0.0.1",
      hostname: this.deps.hostname,
      protocol: "local",
      receivedAt: new Date(env.received),
      source: "local",
    });
    try {
      for await (const chunk of dropped.content as AsyncIterable<Buffer>) await msg.write([chunk]);
      // The drop goes in the ack's turn: nothing between the message becoming visible and its removal.
      await msg.commit(() => removeDroppedNow(file));
    } catch (err) {
      await msg.abort();
      dropped.content.destroy();
      throw err;
    }
    await syncDropFolder(file);
    const remote = recipients.some((r) => r.route.remote.length > 0);
    this.deps.log.info({ id, dropped: env.id, user: env.user, uid: env.uid, from: env.sender, rcpts: recipients.map((r) => r.address) }, "picked up from sendmail");
    if (remote) this.deps.onQueued?.();
    return true;
  }

  /** The sender hears of refused recipients (never for <>: no bounce for a bounce). */
  private async bounceRefused(dropped: DroppedMessage, refused: readonly FailedRecipient[]): Promise<void> {
    const env = dropped.envelope;
    if (env.sender === "" || !this.deps.report) return;
    await this.deps.report({ id: env.id, sender: env.sender, received: env.received, orcptOf: () => undefined, open: () => dropped.reopen() }, refused, "failed");
  }

  private async setAside(file: string, err: MaildropFormatError): Promise<void> {
    const bad = path.join(maildropDir(this.deps.dataDir), "bad");
    await fsp.mkdir(bad, { recursive: true, mode: 0o700 });
    await fsp.rename(file, path.join(bad, path.basename(file)));
    this.deps.log.error({ file, reason: err.message }, "dropped message does not parse; moved to maildrop/bad");
  }
}
