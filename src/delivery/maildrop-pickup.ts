// Takes what `petrel sendmail` dropped into data_dir/maildrop/new/ (queue/maildrop.ts) into the spool,
// the one way in (source "local"): recipients resolved like an authenticated client's (local users,
// aliases, lists; other domains to the queue), the content streamed from the file, then the dropped
// file removed. A crash between the commit and the removal delivers it twice (as Postfix's pickup
// does); a file that does not parse is moved aside to maildrop/bad/ and logged, never retried forever.
import fsp from "node:fs/promises";
import path from "node:path";
import { parseAddress } from "../core/address.js";
import type { Logger } from "../core/log.js";
import { listMaildrop, maildropDir, openDropped, removeDropped, MaildropFormatError } from "../queue/maildrop.js";
import type { AcceptedRecipient, Envelope, IncomingMessage } from "../spool/spool.js";
import type { Route } from "./recipient-resolver.js";

export interface PickupDeps {
  readonly dataDir: string;
  readonly hostname: string;
  readonly spool: { open(env: Envelope): Promise<IncomingMessage> };
  /** Where an address leads for a local sender (relay allowed), or null with the refusal's text. */
  readonly routeOf: (address: string) => { route: Route } | { refused: string };
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
    for (const to of env.recipients) {
      const r = parseAddress(to) ? this.deps.routeOf(to) : { refused: "bad address syntax" };
      if ("route" in r) recipients.push({ address: to, route: r.route });
      else this.deps.log.warn({ id: env.id, user: env.user, to, reason: r.refused }, "sendmail recipient refused");
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
      await msg.commit();
    } catch (err) {
      await msg.abort();
      dropped.content.destroy();
      throw err;
    }
    await removeDropped(file);
    const remote = recipients.some((r) => r.route.remote.length > 0);
    this.deps.log.info({ id, dropped: env.id, user: env.user, uid: env.uid, from: env.sender, rcpts: recipients.map((r) => r.address) }, "picked up from sendmail");
    if (remote) this.deps.onQueued?.();
    return true;
  }

  private async setAside(file: string, err: MaildropFormatError): Promise<void> {
    const bad = path.join(maildropDir(this.deps.dataDir), "bad");
    await fsp.mkdir(bad, { recursive: true, mode: 0o700 });
    await fsp.rename(file, path.join(bad, path.basename(file)));
    this.deps.log.error({ file, reason: err.message }, "dropped message does not parse; moved to maildrop/bad");
  }
}
