// The configuration schema: every key, its type, its default. Validation names the offending key.
// Keys of features that later issues build (submission, TLS, delivery, DNS) parse already.
// Every value is checked here: names (RFC 1035 lengths), addresses, and time spans small enough
// for setTimeout. Whether tls files exist is checked by load.ts, which knows the config's folder.
import net from "node:net";
import os from "node:os";
import { z } from "zod";
import { foldCase, isValidDomain } from "../core/address.js";
import { LOG_LEVELS } from "../core/log.js";

const listenAddress = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$/, 'expected "host:port", e.g. "127.0.0.1:2525" or "[::1]:2525"')
  .refine((s) => Number(s.slice(s.lastIndexOf(":") + 1)) <= 65535, "port must be 0..65535");
const listenList = z.array(listenAddress);
/** setTimeout takes at most 2^31-1 ms; a longer span would fire at once (TimeoutOverflowWarning). */
export const MAX_TIMER_SECONDS = 2147483;
const timerCap = [MAX_TIMER_SECONDS, `at most ${MAX_TIMER_SECONDS} seconds (about 24.8 days, the longest timer Node.js can set)`] as const;
const seconds = z.number().int().nonnegative();
const timerSeconds = seconds.max(...timerCap);

/** A host name (RFC 1035 §2.3.4 lengths: at most 253 octets, labels of at most 63). */
const hostName = z
  .string()
  .max(253, "at most 253 characters")
  .regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/, "expected a host name: letters, digits, - and dots")
  .refine((h) => h.split(".").every((l) => l.length <= 63), "labels (between dots) are at most 63 characters");

/** A mail domain: the syntax of core/address.ts, without address literals, stored lowercase. */
const mailDomain = z
  .string()
  .refine((d) => isValidDomain(d) && !d.startsWith("[") && d.length <= 253, "expected a domain name like example.com (no spaces, @ or /)")
  .transform(foldCase);

/** "host:port" or "[v6]:port" with a port 1-65535. */
const hostPort = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$/, 'expected "host:port", e.g. "smtp.example.com:587"')
  .refine((s) => {
    const port = Number(s.slice(s.lastIndexOf(":") + 1));
    const host = s.slice(0, s.lastIndexOf(":"));
    return port >= 1 && port <= 65535 && (host.startsWith("[") ? net.isIPv6(host.slice(1, -1)) : net.isIPv4(host) || hostName.safeParse(host).success);
  }, "expected a host name or IP address and a port 1-65535");

/** A DNS server: an IP address, optionally with a port ("1.1.1.1", "127.0.0.1:5353", "[::1]:53"). */
const dnsServer = z.string().refine((s) => {
  if (net.isIP(s)) return true;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(s);
  if (!m) return false;
  const port = Number(m[3]);
  return (m[1] !== undefined ? net.isIPv6(m[1]) : net.isIPv4(m[2]!)) && port >= 1 && port <= 65535;
}, 'expected an IP address with an optional port, e.g. "127.0.0.1", "127.0.0.1:5353" or "[::1]:53"');

/** An IP address or a network in CIDR notation: "192.0.2.7", "10.0.0.0/8", "2001:db8::/32". */
const cidr = z.string().refine((s) => parseCidr(s) !== null, 'expected an IP address or network like "10.0.0.0/8" or "2001:db8::/32"');

/** Splits "addr/prefix" (prefix optional) into its parts; null when it is not a valid network. */
export function parseCidr(s: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } | null {
  const [address = "", prefixText, extra] = s.split("/");
  const version = net.isIP(address);
  if (!version || extra !== undefined) return null;
  const max = version === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return null;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) return null;
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}

/** A BlockList holding these networks (each valid by parseCidr). */
export function networkList(networks: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const n of networks) {
    const c = parseCidr(n);
    if (c) list.addSubnet(c.address, c.prefix, c.family);
  }
  return list;
}

/** A time span: seconds as a number, or a string with a unit: "90s", "5m", "2h", "36d". */
const duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const m = typeof v === "string" ? /^(\d{1,9})([smhd])$/.exec(v) : null;
  const n = typeof v === "number" ? v : m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "s" | "m" | "h" | "d"] : NaN;
  if (Number.isInteger(n) && n >= 0) return n;
  ctx.addIssue({ code: "custom", message: 'expected a time span in seconds, or like "300s", "5m", "2h" or "36d"' });
  return z.NEVER;
});

/** An http:// URL (rspamd's HTTP interface); "" for none. */
const httpUrl = z.string().refine((s) => {
  if (s === "") return true;
  try {
    const u = new URL(s);
    return u.protocol === "http:" && u.username === "" && u.search === "" && u.hash === "";
  } catch {
    return false;
  }
}, 'expected an http:// URL like "http://127.0.0.1:11333", or "" for none');

/** A header field name (RFC 5322 §3.6.8: printable ASCII but the colon). */
const headerName = z.string().regex(/^[\x21-\x39\x3b-\x7e]+$/, "expected a header field name like Subject");
/** What [dkim] signs by default: the fields a reader sees and the MIME structure, and list fields when present. */
export const DKIM_SIGNED_HEADERS = [
  "From", "Reply-To", "Subject", "Date", "Message-ID", "To", "Cc", "In-Reply-To", "References", "MIME-Version",
  "Content-Type", "Content-Transfer-Encoding", "Sender", "List-Id", "List-Help", "List-Unsubscribe",
  "List-Unsubscribe-Post", "List-Subscribe", "List-Post", "List-Owner", "List-Archive",
] as const;
/** Oversigned by default: not the List-* fields or Reply-To and Sender, which mailing lists add. */
export const DKIM_OVERSIGNED_HEADERS = ["From", "Subject", "Date", "Message-ID", "To", "Cc", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"] as const;

export const configSchema = z.strictObject({
  hostname: hostName.default(() => os.hostname()),
  domains: z.array(mailDomain).min(1).default(["localhost"]),
  data_dir: z.string().min(1).default("./data"),
  listen: z
    .strictObject({
      smtp: listenList.default(["127.0.0.1:2525"]),
      submission: listenList.default(["127.0.0.1:2587"]),
      submissions: listenList.default(["127.0.0.1:2465"]),
      pop3: listenList.default(["127.0.0.1:2110"]),
      pop3s: listenList.default(["127.0.0.1:2995"]),
    })
    .prefault({}),
  limits: z
    .strictObject({
      max_message_size: z.number().int().positive().default(10 * 1024 * 1024),
      max_recipients: z.number().int().positive().default(100),
      max_connections: z.number().int().positive().default(200),
      max_errors: z.number().int().positive().default(20),
      max_junk_commands: z.number().int().positive().default(100),
      command_timeout: timerSeconds.positive().default(300),
      data_timeout: timerSeconds.positive().default(600),
      shutdown_grace: timerSeconds.default(30),
      /** Recipients of one message after aliases and lists are expanded. */
      max_expanded_recipients: z.number().int().positive().default(10000),
      /** Failed logins from one IP address within auth_failure_window before it is refused. */
      auth_failures_per_ip: z.number().int().positive().default(20),
      /** Failed logins for one account within auth_failure_window before it is refused. */
      auth_failures_per_account: z.number().int().positive().default(10),
      auth_failure_window: timerSeconds.positive().default(600),
      /** Connections one IP address may hold open at once on one listener (421 4.7.0 past it). */
      max_connections_per_ip: z.number().int().positive().default(50),
      /** Networks max_connections_per_ip does not apply to (Postfix: smtpd_client_connection_limit_exceptions). */
      per_ip_exceptions: z.array(cidr).default(["127.0.0.0/8", "::1/128"]),
      /** Seconds a client has to finish a TLS handshake (STARTTLS, STLS or an implicit-TLS port). */
      tls_handshake_timeout: timerSeconds.positive().default(30),
    })
    .prefault({}),
  smtp: z
    .strictObject({
      vrfy: z.boolean().default(true),
      expn: z.boolean().default(true),
      bare_line_endings: z.enum(["normalize", "reject"]).default("normalize"),
      forward_offsite: z.boolean().default(true),
      /** Seconds between "220-" and the final "220 "; a client talking in between is refused. */
      greet_pause: z.number().nonnegative().max(...timerCap).default(0),
      /** VRFY/EXPN by partial name or display name (not only by address). */
      vrfy_search: z.boolean().default(false),
      /** alice+tag@ reaches alice@; "" turns plus-addressing off. */
      recipient_delimiter: z
        .string()
        .regex(/^[!#$%&'*+\-/=?^_`{|}~]?$/, 'expected one punctuation character allowed in addresses, like "+", "-" or "=", or "" for none')
        .default("+"),
      /** SMTP AUTH before TLS: "never" (RFC 8314), or "loopback" for clients on this machine. */
      auth_without_tls: z.enum(["never", "loopback"]).default("never"),
      /** Failed AUTH attempts in one session before 421 and close. */
      max_auth_failures: z.number().int().positive().default(3),
      /** Seconds before a failed AUTH is answered (slows guessing). */
      auth_failure_delay: z.number().nonnegative().max(...timerCap).default(1),
    })
    .prefault({}),
  submission: z
    .strictObject({
      /** The envelope sender must be the user's own address or an alias that reaches them. */
      sender_check: z.boolean().default(true),
      /** Name the authenticated user in the Received header (off: privacy). */
      received_auth_user: z.boolean().default(false),
    })
    .prefault({}),
  pop3: z
    .strictObject({
      idle_timeout: timerSeconds.positive().default(600),
      max_auth_failures: z.number().int().positive().default(3),
      auth_failure_delay: z.number().nonnegative().max(...timerCap).default(1),
      /** USER/PASS and AUTH PLAIN without TLS: on loopback connections only, always, or never. */
      plaintext_login: z.enum(["loopback", "always", "never"]).default("loopback"),
    })
    .prefault({}),
  tls: z.strictObject({ cert: z.string().optional(), key: z.string().optional() }).prefault({}),
  delivery: z
    .strictObject({
      smarthost: hostPort.optional(),
      smarthost_security: z.enum(["starttls", "tls", "none"]).default("starttls"),
      smarthost_username: z.string().optional(),
      smarthost_password: z.string().optional(),
      mx_port: z.number().int().min(1).max(65535).default(25),
      retry_schedule: z.array(timerSeconds.positive()).min(1).default([300, 900, 1800, 3600, 7200, 14400]),
      max_queue_age: seconds.positive().default(5 * 24 * 3600),
      /** A file holding the smarthost password (first line), instead of smarthost_password in the config. */
      smarthost_password_file: z.string().min(1).optional(),
      /** Check the smarthost's certificate (off only for a test smarthost with a self-signed one). */
      smarthost_verify: z.boolean().default(true),
      /** Refuse to send without STARTTLS to every destination (default: opportunistic, unverified). */
      require_tls: z.boolean().default(false),
      /** Domains mail to which must go over TLS even when require_tls is off. */
      require_tls_domains: z.array(mailDomain).default([]),
      /** Connections to one destination at once. */
      destination_concurrency: z.number().int().positive().max(1000).default(20),
      /** Outbound connections at once, all destinations together. */
      max_concurrency: z.number().int().positive().max(10000).default(100),
      /** Seconds after which the sender gets a "delayed" notice for a still-deferred recipient; 0 = never (Postfix's default). */
      delay_warning: seconds.max(...timerCap).default(0),
      /** Longest time between two looks at the queue, in seconds (new mail is sent at once regardless). */
      queue_run_interval: timerSeconds.positive().default(60),
    })
    .prefault({}),
  spam: z
    .strictObject({
      /** DNS blocklist zones asked at connect (RFC 5782); a listed client gets 554 5.7.1 and is disconnected. */
      dnsbl: z.array(hostName).default([]),
      /** DNS allowlist zones: a listed client skips the DNSBL and greylisting. */
      dnswl: z.array(hostName).default([]),
      /** Seconds the DNSBL/DNSWL lookups may take before the client is let in unchecked. */
      dnsbl_timeout: z.number().positive().max(...timerCap).default(5),
      /** Clients that DNSBL/DNSWL lookups and greylisting leave alone (local relays, this machine). */
      exempt_networks: z.array(cidr).default(["127.0.0.0/8", "::1/128"]),
      /** rspamd's HTTP address, e.g. "http://127.0.0.1:11333"; "" for none. */
      rspamd: httpUrl.default(""),
      /** Seconds rspamd has to answer before the message is accepted unchecked (tagged Unknown). */
      rspamd_timeout: z.number().positive().max(...timerCap).default(15),
      /** Greylisting at RCPT (client network, sender, recipient). */
      greylisting: z.boolean().default(false),
      /** How long a new triplet waits before a retry is accepted. */
      greylist_delay: duration.default(300),
      /** A passed triplet (and an auto-whitelisted client) is forgotten after this long without mail. */
      greylist_max_age: duration.default(36 * 86400),
      /** A retry later than this after the first try counts as a new first try. */
      greylist_retry_window: duration.default(2 * 86400),
      /** A client network whose retries passed this many times skips greylisting; 0 turns it off. */
      greylist_auto_whitelist: z.number().int().nonnegative().default(5),
      /** The built-in Bayes classifier (src/spam/bayes-check.ts); inert until trained (bayes_min_trained). */
      bayes: z.boolean().default(true),
      /** One token database for the server, or one per recipient (trained with `petrel spam train --user`). */
      bayes_scope: z.enum(["global", "per-user"]).default("global"),
      /** Score (0..1) at and above which a message is spam: X-Spam-Status Yes, delivered to Junk. */
      bayes_spam_cutoff: z.number().gt(0).lt(1).default(0.9),
      /** Score at and below which a message is ham; between the cutoffs it is "unsure" (tagged, delivered). */
      bayes_ham_cutoff: z.number().gt(0).lt(1).default(0.1),
      /** Trained messages needed in each class (spam and ham) before the classifier gives verdicts. */
      bayes_min_trained: z.number().int().positive().default(200),
    })
    .refine((s) => s.bayes_ham_cutoff < s.bayes_spam_cutoff, { message: "bayes_ham_cutoff must be below bayes_spam_cutoff", path: ["bayes_ham_cutoff"] })
    .prefault({}),
  dns: z.strictObject({ servers: z.array(dnsServer).default([]) }).prefault({}),
  /** Inbound authentication of mail on the smtp listener (SPF, DKIM, DMARC, ARC): what the results lead to. */
  auth: z
    .strictObject({
      /** Run the checks on unauthenticated smtp clients; off: no Authentication-Results, nothing refused. */
      checks: z.boolean().default(true),
      /** SPF "fail" for the MAIL FROM identity (HELO's when MAIL FROM is <>): "tag" (accept), "junk", "reject" (550 5.7.23). */
      spf_fail: z.enum(["tag", "junk", "reject"]).default("tag"),
      /** DMARC fail where the domain's policy is p=reject: "reject" (550 5.7.1), "junk", "tag". */
      dmarc_reject: z.enum(["reject", "junk", "tag"]).default("reject"),
      /** DMARC fail where the domain's policy is p=quarantine: "junk" or "tag". */
      dmarc_quarantine: z.enum(["junk", "tag"]).default("junk"),
      /** A DNS failure (timeout, SERVFAIL) deciding SPF or DMARC: "tag" (accept) or "defer" (451 4.7.x, the client retries). */
      dns_temperror: z.enum(["tag", "defer"]).default("tag"),
      /** Networks whose mail is neither checked (SPF/DKIM/DMARC, spam) nor filtered, and whose HELO is not refused: relays the admin trusts. */
      trusted_networks: z.array(cidr).default([]),
    })
    .prefault({}),
  log: z.strictObject({ level: z.enum(LOG_LEVELS).default("info") }).prefault({}),
  dkim: z
    .strictObject({
      /** DKIM-sign mail our users and Petrel send (submission, sendmail, bounces) whose From: domain has keys. */
      sign: z.boolean().default(true),
      /** Where `petrel dkim generate` puts keys and the relay finds them; relative to data_dir. */
      key_dir: z.string().min(1).default("dkim"),
      /** Header fields signed (each instance present); From must be one (RFC 6376 §5.4). */
      headers: z
        .array(headerName)
        .min(1)
        .refine((l) => l.some((n) => n.toLowerCase() === "from"), "must include From (RFC 6376 section 5.4)")
        .default([...DKIM_SIGNED_HEADERS]),
      /** Fields signed once more than they occur, so one added later breaks the signature (RFC 6376 §8.15). */
      oversign: z.array(headerName).default([...DKIM_OVERSIGNED_HEADERS]),
    })
    .prefault({}),
});

export type Config = z.output<typeof configSchema>;

/** Splits "host:port" / "[v6]:port" into parts for net.Server.listen. */
export function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(":");
  let host = addr.slice(0, i);
  if (host.startsWith("[")) host = host.slice(1, -1);
  return { host, port: Number(addr.slice(i + 1)) };
}
