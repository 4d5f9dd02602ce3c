// Greylisting at RCPT, as postgrey does it: the triplet (client network: IPv4 /24, IPv6 /64; sender;
// recipient) seen for the first time gets 450 4.7.1; a retry after the delay (and within the retry window)
// passes and the triplet is remembered for max age since its last mail; a client network whose retries
// passed N times passes outright (postgrey --auto-whitelist-clients). State in SQLite under data_dir
// (greylist.db, WAL; losing it in a crash only greylists again). Trusts its callers for who is exempt.
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import Database from "better-sqlite3";
import { reply, type Reply } from "../core/reply.js";
import { openPrivateDatabase } from "../store/private-database.js";
import { expandIpv6 } from "./dnsbl.js";

export interface GreylistOptions {
  /** `[spam] greylist_delay`, seconds: how long a new triplet must wait before a retry passes. */
  readonly delaySeconds: number;
  /** `[spam] greylist_max_age`, seconds: passed triplets and whitelisted clients are forgotten this long after their last mail. */
  readonly maxAgeSeconds: number;
  /** `[spam] greylist_retry_window`, seconds: a retry later than this after the first try starts over. */
  readonly retryWindowSeconds: number;
  /** `[spam] greylist_auto_whitelist`: passed retries after which a client network skips greylisting; 0: never. */
  readonly autoWhitelist: number;
  /** The clock, in ms since the epoch (tests move it). */
  readonly now?: () => number;
}

export type GreylistDecision =
  /** known: the triplet passed before; retried: it passes now, after the delay; client: an auto-whitelisted network. */
  | { readonly kind: "pass"; readonly why: "known" | "retried" | "client" }
  | { readonly kind: "defer"; readonly retryInSeconds: number; readonly reply: Reply };

/** What the SMTP session asks at RCPT. */
export interface GreylistPolicy {
  check(clientIp: string, sender: string, recipient: string): GreylistDecision;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS triplets (
  client TEXT NOT NULL,
  sender TEXT NOT NULL,
  recipient TEXT NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  passed INTEGER NOT NULL,
  PRIMARY KEY (client, sender, recipient)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS triplets_last_seen ON triplets (last_seen);
CREATE TABLE IF NOT EXISTS clients (client TEXT PRIMARY KEY, passes INTEGER NOT NULL, last_seen INTEGER NOT NULL) WITHOUT ROWID;
`;

/** Old entries are swept at most this often (seconds), from inside check(). */
const EXPIRY_INTERVAL = 3600;

interface TripletRow {
  readonly first_seen: number;
  readonly last_seen: number;
  readonly passed: number;
}

export class Greylist implements GreylistPolicy {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly getTriplet: Database.Statement<[string, string, string], TripletRow>;
  private readonly putTriplet: Database.Statement;
  private readonly touchTriplet: Database.Statement;
  private readonly getClient: Database.Statement<[string], { passes: number; last_seen: number }>;
  private readonly touchClient: Database.Statement;
  private readonly countPass: Database.Statement;
  private readonly expire: () => void;
  private lastExpiry = 0;

  constructor(
    dataDir: string,
    private readonly opts: GreylistOptions,
  ) {
    this.now = opts.now ?? Date.now;
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const file = path.join(dataDir, "greylist.db");
    // Losing the last entries in a power cut only greylists those clients again: no fsync per RCPT.
    this.db = openPrivateDatabase(file, "NORMAL").db;
    this.db.exec(SCHEMA);
    this.getTriplet = this.db.prepare("SELECT first_seen, last_seen, passed FROM triplets WHERE client = ? AND sender = ? AND recipient = ?");
    this.putTriplet = this.db.prepare(
      `INSERT INTO triplets (client, sender, recipient, first_seen, last_seen, passed) VALUES (@client, @sender, @recipient, @now, @now, 0)
       ON CONFLICT (client, sender, recipient) DO UPDATE SET first_seen = @now, last_seen = @now, passed = 0`,
    );
    this.touchTriplet = this.db.prepare("UPDATE triplets SET last_seen = @now, passed = @passed WHERE client = @client AND sender = @sender AND recipient = @recipient");
    this.getClient = this.db.prepare("SELECT passes, last_seen FROM clients WHERE client = ?");
    this.touchClient = this.db.prepare("UPDATE clients SET last_seen = ? WHERE client = ?");
    this.countPass = this.db.prepare(
      "INSERT INTO clients (client, passes, last_seen) VALUES (@client, 1, @now) ON CONFLICT (client) DO UPDATE SET passes = passes + 1, last_seen = @now",
    );
    const expireTriplets = this.db.prepare("DELETE FROM triplets WHERE (passed = 1 AND last_seen < @maxAge) OR (passed = 0 AND first_seen < @window)");
    const expireClients = this.db.prepare("DELETE FROM clients WHERE last_seen < @maxAge");
    this.expire = this.db.transaction(() => {
      const now = this.seconds();
      const bounds = { maxAge: now - opts.maxAgeSeconds, window: now - opts.retryWindowSeconds };
      expireTriplets.run(bounds);
      expireClients.run({ maxAge: bounds.maxAge });
    });
  }

  private seconds(): number {
    return Math.floor(this.now() / 1000);
  }

  check(clientIp: string, sender: string, recipient: string): GreylistDecision {
    const now = this.seconds();
    if (now - this.lastExpiry >= EXPIRY_INTERVAL) {
      this.lastExpiry = now;
      this.expire();
    }
    const key = { client: clientNetwork(clientIp), sender: normaliseSender(sender), recipient: recipient.toLowerCase(), now };
    const { maxAgeSeconds, retryWindowSeconds, delaySeconds, autoWhitelist } = this.opts;
    if (autoWhitelist > 0) {
      const c = this.getClient.get(key.client);
      if (c && c.passes >= autoWhitelist && c.last_seen >= now - maxAgeSeconds) {
        this.touchClient.run(now, key.client);
        return { kind: "pass", why: "client" };
      }
    }
    const row = this.getTriplet.get(key.client, key.sender, key.recipient);
    if (row?.passed === 1 && row.last_seen >= now - maxAgeSeconds) {
      this.touchTriplet.run({ ...key, passed: 1 });
      return { kind: "pass", why: "known" };
    }
    if (row?.passed === 0 && row.first_seen >= now - retryWindowSeconds) {
      const waited = now - row.first_seen;
      if (waited >= delaySeconds) {
        this.db.transaction(() => {
          this.touchTriplet.run({ ...key, passed: 1 });
          this.countPass.run(key);
        })();
        return { kind: "pass", why: "retried" };
      }
      this.touchTriplet.run({ ...key, passed: 0 });
      return defer(delaySeconds - waited);
    }
    // New, or too old to count: this is the first try.
    this.putTriplet.run(key);
    return defer(delaySeconds);
  }

  close(): void {
    this.db.close();
  }
}

function defer(seconds: number): GreylistDecision {
  return { kind: "defer", retryInSeconds: seconds, reply: reply(450, "4.7.1", `Greylisted, try again in ${seconds} seconds`) };
}

/** The client's network as greylisting sees it: IPv4 /24 ("192.0.2.0/24"), IPv6 /64 ("2001:0db8:0000:0001::/64"). */
export function clientNetwork(ip: string): string {
  if (net.isIPv4(ip)) return `${ip.split(".").slice(0, 3).join(".")}.0/24`;
  if (net.isIPv6(ip)) return `${expandIpv6(ip).split(":").slice(0, 4).join(":")}::/64`;
  return ip;
}

/**
 * The sender as part of the triplet: lowercase, without a BATV tag ("prvs=1234abcd=user@" → "user@",
 * a new tag on every message) or a +extension, which senders vary per message (VERP, bounces).
 */
export function normaliseSender(sender: string): string {
  const s = sender.toLowerCase();
  const at = s.lastIndexOf("@");
  if (at < 0) return s;
  let local = s.slice(0, at);
  const batv = /^(?:prvs|msprvs1|btv1)=[^=]+=(.+)$/.exec(local);
  if (batv) local = batv[1]!;
  const plus = local.indexOf("+");
  if (plus > 0) local = local.slice(0, plus);
  return `${local}${s.slice(at)}`;
}
