// The runner's Transport over Petrel's SMTP client: one connection per attempt (greeting, EHLO,
// STARTTLS, AUTH for a smarthost), one transaction for the domain's recipients, the content streamed
// from the queue file with CRLF line ends (queue/queued-content.ts), after the fields an optional signer
// puts in front (DKIM-Signature, dkim/outbound-signer.ts). MX hosts get opportunistic,
// unverified STARTTLS unless TLS is required for all or for the domain; a smarthost gets its
// configured security and credentials. A connection that cannot be made or used is "unreachable"
// (the runner tries the next address, then defers). Never logs a password.
import { isAscii } from "../core/address.js";
import type { Reply } from "../core/reply.js";
import type { QueuedMessage } from "../queue/queue-scan.js";
import { crlfContent, measure } from "../queue/queued-content.js";
import { ClientError } from "../smtp-client/client-error.js";
import { SmtpClientConnection, type ClientOptions, type ClientTimeouts } from "../smtp-client/smtp-client-connection.js";
import type { AttemptResult, Target, Transport } from "./queue-runner.js";

export interface SmtpTransportOptions {
  /** Our name in EHLO. */
  readonly helo: string;
  readonly requireTls: boolean;
  readonly requireTlsDomains: readonly string[];
  readonly smarthost?: {
    readonly security: "starttls" | "tls" | "none";
    readonly verifyCertificate: boolean;
    readonly auth?: { readonly user: string; readonly password: string };
  };
  readonly timeouts?: Partial<ClientTimeouts>;
  /** Header fields to send in front of each message (DKIM signatures: dkim/outbound-signer.ts). */
  readonly signer?: OutboundFields;
}

/** What the transport asks before sending a message: complete header fields ending in CRLF, or none. Never rejects. */
export interface OutboundFields {
  fieldsFor(m: QueuedMessage): Promise<Buffer>;
}

export class SmtpTransport implements Transport {
  constructor(private readonly opts: SmtpTransportOptions) {}

  private clientOptions(target: Target, domain: string): ClientOptions {
    const base = { helo: this.opts.helo, ...(this.opts.timeouts ? { timeouts: this.opts.timeouts } : {}) };
    const sh = this.opts.smarthost;
    if (target.profile === "smarthost" && sh) {
      const security = sh.security === "starttls" ? "require-tls" : sh.security;
      return { ...base, security, verifyCertificate: sh.verifyCertificate, servername: target.host, ...(sh.auth ? { auth: sh.auth } : {}) };
    }
    const require = this.opts.requireTls || this.opts.requireTlsDomains.includes(domain);
    return { ...base, security: require ? "require-tls" : "opportunistic", verifyCertificate: false, servername: target.host };
  }

  /** Idle connections by target, each closed after IDLE_MS unused (Postfix's connection cache). */
  private readonly idle = new Map<string, { conn: SmtpClientConnection; timer: NodeJS.Timeout }[]>();

  async attempt(target: Target, m: QueuedMessage, recipients: readonly string[]): Promise<AttemptResult> {
    const domain = recipients[0]!.slice(recipients[0]!.lastIndexOf("@") + 1).toLowerCase();
    const options = this.clientOptions(target, domain);
    // One cache per place and security: domains sharing an MX host (or the smarthost) share connections.
    const key = `${target.profile} ${target.host} ${target.address} ${target.port} ${options.security}`;
    const reused = this.take(key);
    if (reused) {
      const r = await this.sendOn(reused, key, m, recipients);
      // The peer may have closed the cached connection meanwhile: then try once on a fresh one.
      if (r !== "stale") return r;
    }
    let conn: SmtpClientConnection;
    try {
      conn = await SmtpClientConnection.connect(target.host, target.address, target.port, options);
    } catch (err) {
      return { kind: "unreachable", reason: reasonOf(err) };
    }
    const r = await this.sendOn(conn, key, m, recipients);
    return r === "stale" ? { kind: "unreachable", reason: "the connection closed before the transaction" } : r;
  }

  /** Closes every idle connection (server shutdown). */
  async close(): Promise<void> {
    const all = [...this.idle.values()].flat();
    this.idle.clear();
    for (const { timer } of all) clearTimeout(timer);
    await Promise.all(all.map(({ conn }) => conn.quit().catch(() => conn.destroy())));
  }

  private take(key: string): SmtpClientConnection | null {
    const list = this.idle.get(key);
    while (list?.length) {
      const { conn, timer } = list.pop()!;
      clearTimeout(timer);
      if (conn.currentState === "ready") return conn;
      conn.destroy();
    }
    return null;
  }

  private keep(key: string, conn: SmtpClientConnection): void {
    if (conn.currentState !== "ready") return conn.destroy();
    const list = this.idle.get(key) ?? [];
    const entry = {
      conn,
      timer: setTimeout(() => {
        const l = this.idle.get(key);
        const i = l?.indexOf(entry) ?? -1;
        if (i >= 0) l!.splice(i, 1);
        void conn.quit().catch(() => conn.destroy());
      }, IDLE_MS),
    };
    entry.timer.unref();
    list.push(entry);
    this.idle.set(key, list);
  }

  private async sendOn(conn: SmtpClientConnection, key: string, m: QueuedMessage, recipients: readonly string[]): Promise<AttemptResult | "stale"> {
    try {
      const facts = await measure(m.messagePath);
      const prefix = this.opts.signer ? await this.opts.signer.fieldsFor(m) : null;
      const env = m.envelope;
      const byTo = new Map(env.recipients.map((r) => [r.to, r]));
      const notify = new Map<string, string>();
      const orcpt = new Map<string, string>();
      for (const to of recipients) {
        const r = byTo.get(to);
        if (r?.notify) notify.set(to, r.notify);
        if (r?.orcpt) orcpt.set(to, r.orcpt);
      }
      const { results } = await conn.send({
        sender: env.sender,
        recipients,
        size: facts.size + (prefix?.length ?? 0),
        eightBit: facts.eightBit,
        smtpUtf8: !isAscii(env.sender) || recipients.some((r) => !isAscii(r)),
        open: () => (prefix?.length ? prefixed(prefix, crlfContent(m.messagePath)) : crlfContent(m.messagePath)),
        dsn: { ...(env.ret ? { ret: env.ret } : {}), ...(env.envid ? { envid: env.envid } : {}), notify, orcpt },
      });
      this.keep(key, conn);
      return { kind: "replies", replies: new Map<string, Reply>(results.map((r) => [r.to, r.reply])) };
    } catch (err) {
      conn.destroy();
      if (err instanceof ClientError && err.code === "state") return "stale";
      // A connection that was up but failed before any result: every recipient waits for a retry.
      if (err instanceof ClientError && err.reply) return { kind: "replies", replies: new Map(recipients.map((to) => [to, err.reply!])) };
      return { kind: "unreachable", reason: reasonOf(err) };
    }
  }
}

/** How long an unused connection stays open for the next message to the same place. */
const IDLE_MS = 5000;

/** `first`, then the content. */
async function* prefixed(first: Buffer, content: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield first;
  yield* content;
}

function reasonOf(err: unknown): string {
  if (err instanceof ClientError) return err.reply ? `${err.message} (${err.reply.code} ${err.reply.lines.join(" ")})` : err.message;
  return err instanceof Error ? err.message : String(err);
}
