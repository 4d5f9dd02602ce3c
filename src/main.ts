// Wires Petrel together explicitly: config → account store, spool, policy → listeners (SMTP, POP3).
// Nothing registers itself; everything a component needs is passed to its constructor.
import crypto from "node:crypto";
import { Authenticator } from "./auth/authenticator.js";
import { FailureThrottle } from "./auth/failure-throttle.js";
import { HashPool } from "./auth/hash-pool.js";
import type { LoadedConfig } from "./config/load.js";
import { networkList } from "./config/schema.js";
import { UsageError } from "./core/errors.js";
import type { Logger } from "./core/log.js";
import { mailboxPath } from "./mailbox/maildir.js";
import { ApopTimestamps } from "./auth/apop.js";
import { Maildrop } from "./pop3-server/maildrop.js";
import { MaildropLocks } from "./pop3-server/maildrop-locks.js";
import { Pop3Session } from "./pop3-server/session.js";
import { DataDirLock } from "./recovery/data-dir-lock.js";
import { recoverDataDir } from "./recovery/startup-recovery.js";
import { TcpListener, type BoundAddress } from "./protocol/tcp-listener.js";
import { HeloCheck } from "./smtp-server/helo-check.js";
import { RecipientPolicy } from "./smtp-server/recipient-policy.js";
import { ReverseDns } from "./smtp-server/reverse-dns.js";
import { SmtpSession } from "./smtp-server/session.js";
import { Dnsbl } from "./spam/dnsbl.js";
import { Greylist } from "./spam/greylist.js";
import { DirSyncer } from "./spool/dir-sync.js";
import { Spool } from "./spool/spool.js";
import { testChecks } from "./spool/test-check.js";
import { createAuthCheck } from "./trust/auth-check.js";
import { createRspamdCheck } from "./spam/rspamd-check.js";
import { BayesCheck } from "./spam/bayes-check.js";
import type { MessageCheck } from "./trust/message-check.js";
import { AccountStore } from "./store/account-store.js";
import { preparePrivateDir } from "./store/data-dir.js";
import fs from "node:fs";
import path from "node:path";
import { parseAddress } from "./core/address.js";
import { ControlServer, type ControlAnswer } from "./control/control-socket.js";
import { BounceSender, type RouteOf } from "./delivery/bounce-sender.js";
import { reply } from "./core/reply.js";
import { MaildropPickup } from "./delivery/maildrop-pickup.js";
import { QueueRunner } from "./delivery/queue-runner.js";
import { QueueScheduler } from "./delivery/queue-scheduler.js";
import { makeRouter } from "./delivery/routing.js";
import { SmtpTransport } from "./delivery/smtp-transport.js";
import { DkimKeyStore } from "./dkim/dkim-key-store.js";
import { OutboundSigner } from "./dkim/outbound-signer.js";
import { crlfContent } from "./queue/queued-content.js";
import { deleteEntry, readEntry } from "./queue/queue-scan.js";
import { QueueState } from "./queue/queue-state.js";
import { ServerCertificates } from "./tls/server-certificates.js";

export interface RunningServer {
  readonly addresses: readonly BoundAddress[];
  /** SIGHUP: re-reads [tls] cert/key for the next handshakes; a bad file is logged and the running certificate kept. */
  reloadTls(): boolean;
  /** Stops accepting, lets transactions in flight finish (bounded), closes the store. */
  stop(): Promise<void>;
}

export async function startServer(config: LoadedConfig, log: Logger): Promise<RunningServer> {
  if (Object.values(config.listen).every((a) => a.length === 0)) throw new UsageError("no listeners configured: every list in [listen] is empty");
  // Before anything writes: a private data_dir (a clear error when it cannot be used), one server
  // per data_dir, then finish or sweep what a crash left.
  for (const change of preparePrivateDir(config.data_dir)) log.warn({ change }, "made data_dir private");
  const lock = DataDirLock.acquire(config.data_dir);
  let certificates: ServerCertificates;
  try {
    log.info(await recoverDataDir(config.data_dir), "recovered");
    certificates = await ServerCertificates.open({ cert: config.tls.cert, key: config.tls.key, hostname: config.hostname, dataDir: config.data_dir }, log);
  } catch (err) {
    lock.release();
    throw err;
  }
  const store = new AccountStore(config.data_dir, config.domains);
  for (const change of store.narrowed) log.warn({ change }, "made data_dir private");
  const trustedNetworks = networkList(config.auth.trusted_networks);
  // The checks the spool runs on mail relayed to us (smtp listener, no AUTH, outside trusted_networks),
  // in this order (their header fields are stored in it): "auth" (SPF/DKIM/DMARC/ARC), "rspamd", "bayes".
  // testChecks() is empty unless PETREL_TEST_CHECK=1 (end-to-end tests, bench).
  const bayes = BayesCheck.fromConfig(config, log.child({ component: "bayes" }));
  const checks: MessageCheck[] = [
    createAuthCheck({ hostname: config.hostname, dnsServers: config.dns.servers, policy: config.auth, log: log.child({ component: "auth" }) }),
    ...(config.spam.rspamd ? [createRspamdCheck({ url: config.spam.rspamd, timeoutMs: config.spam.rspamd_timeout * 1000, log: log.child({ component: "rspamd" }) })] : []),
    ...(bayes ? [bayes] : []),
    ...testChecks(),
  ];
  const spool = new Spool(config.data_dir, log, new DirSyncer(), { checks, trustedNetworks });
  const reverseDns = new ReverseDns({ servers: config.dns.servers });
  const heloCheck = new HeloCheck({ ownNames: [config.hostname, ...config.domains], trusted: trustedNetworks, exemptLoopback: true });
  const policy = new RecipientPolicy(store, {
    vrfy: config.smtp.vrfy,
    expn: config.smtp.expn,
    forwardOffsite: config.smtp.forward_offsite,
    search: config.smtp.vrfy_search,
    domains: config.domains,
    delimiter: config.smtp.recipient_delimiter,
  });
  const limits = config.limits;
  // Port 25 only: DNSBL/DNSWL at connect, greylisting at RCPT (submission clients log in instead).
  const spam = config.spam;
  const screen = new Dnsbl({
    blocklists: spam.dnsbl,
    allowlists: spam.dnswl,
    // Hosts the admin trusts skip the screens too, as they skip the checks.
    exempt: networkList([...spam.exempt_networks, ...config.auth.trusted_networks]),
    timeoutMs: spam.dnsbl_timeout * 1000,
    servers: config.dns.servers,
    log: log.child({ component: "dnsbl" }),
  });
  const greylist = spam.greylisting
    ? new Greylist(config.data_dir, {
        delaySeconds: spam.greylist_delay,
        maxAgeSeconds: spam.greylist_max_age,
        retryWindowSeconds: spam.greylist_retry_window,
        autoWhitelist: spam.greylist_auto_whitelist,
      })
    : undefined;
  const relay = startRelay(config, log, store, spool, policy);
  const hashPool = new HashPool();
  const authenticator = new Authenticator(
    store,
    hashPool,
    new FailureThrottle({
      perIp: limits.auth_failures_per_ip,
      perAccount: limits.auth_failures_per_account,
      windowMs: limits.auth_failure_window * 1000,
    }),
  );
  const smtpOptions = {
    hostname: config.hostname,
    maxMessageSize: limits.max_message_size,
    maxRecipients: limits.max_recipients,
    maxExpandedRecipients: limits.max_expanded_recipients,
    maxErrors: limits.max_errors,
    maxJunkCommands: limits.max_junk_commands,
    commandTimeoutMs: limits.command_timeout * 1000,
    dataTimeoutMs: limits.data_timeout * 1000,
    bareLineEndings: config.smtp.bare_line_endings,
    postmasterDomain: config.domains[0]!,
    greetPauseMs: config.smtp.greet_pause * 1000,
    authWithoutTls: config.smtp.auth_without_tls,
    maxAuthFailures: config.smtp.max_auth_failures,
    authFailureDelayMs: config.smtp.auth_failure_delay * 1000,
    senderCheck: config.submission.sender_check,
    receivedAuthUser: config.submission.received_auth_user,
  };
  const pop3Options = {
    hostname: config.hostname,
    idleTimeoutMs: config.pop3.idle_timeout * 1000,
    maxAuthFailures: config.pop3.max_auth_failures,
    authFailureDelayMs: config.pop3.auth_failure_delay * 1000,
    maxCommands: limits.max_junk_commands,
    plaintextLogin: config.pop3.plaintext_login,
  };
  const maildropLocks = new MaildropLocks();
  const apopTimestamps = new ApopTimestamps(config.hostname);
  const host = config.hostname;
  const common = {
    maxConnections: limits.max_connections,
    maxConnectionsPerIp: limits.max_connections_per_ip,
    perIpExceptions: networkList(limits.per_ip_exceptions),
    tls: certificates,
    handshakeTimeoutMs: limits.tls_handshake_timeout * 1000,
  };
  const smtpBusy = (limit: "total" | "per-ip") =>
    limit === "per-ip"
      ? `421 4.7.0 ${host} Error: too many connections from your address, try again later\r\n`
      : `421 4.7.0 ${host} Error: too many connections, try again later\r\n`;
  const pop3Busy = (limit: "total" | "per-ip") =>
    limit === "per-ip" ? "-ERR [SYS/TEMP] too many connections from your address, try again later\r\n" : "-ERR [SYS/TEMP] too many connections, try again later\r\n";
  const smtpListener = (name: "smtp" | "submission" | "submissions") =>
    new TcpListener(
      {
        ...common,
        name,
        addresses: config.listen[name],
        implicitTls: name === "submissions",
        busyReply: smtpBusy,
        createSession: (conn, sessionLog) =>
          new SmtpSession(conn, {
            options: { ...smtpOptions, submission: name !== "smtp", ...(name === "smtp" ? { heloCheck } : {}) },
            policy,
            store: spool,
            reverseDns,
            accounts: authenticator,
            log: sessionLog,
            newId: newQueueId,
            queue: relay.etrn,
            ...(name === "smtp" ? { screen, ...(greylist ? { greylist } : {}) } : {}),
          }),
      },
      log,
    );
  const pop3Listener = (name: "pop3" | "pop3s") =>
    new TcpListener(
      {
        ...common,
        name,
        addresses: config.listen[name],
        implicitTls: name === "pop3s",
        busyReply: pop3Busy,
        createSession: (conn, sessionLog) =>
          new Pop3Session(conn, {
            options: pop3Options,
            accounts: authenticator,
            locks: maildropLocks,
            timestamps: apopTimestamps,
            openMaildrop: (address) => Maildrop.open(mailboxPath(config.data_dir, address)),
            log: sessionLog,
          }),
      },
      log,
    );
  const listeners = [smtpListener("smtp"), smtpListener("submission"), smtpListener("submissions"), pop3Listener("pop3"), pop3Listener("pop3s")];
  const addresses: BoundAddress[] = [];
  try {
    for (const l of listeners) addresses.push(...(await l.start()));
    await relay.start();
  } catch (err) {
    await Promise.all(listeners.map((l) => l.stop(0)));
    await relay.stop();
    await hashPool.close();
    greylist?.close();
    bayes?.close();
    store.close();
    lock.release();
    throw err;
  }
  log.info({ hostname: config.hostname, domains: config.domains, data_dir: config.data_dir, config: config.source }, "petrel started");
  return {
    addresses,
    reloadTls: () => certificates.reload(),
    async stop() {
      await Promise.all(listeners.map((l) => l.stop(limits.shutdown_grace * 1000)));
      await relay.stop();
      await hashPool.close();
      greylist?.close();
      bayes?.close();
      store.close();
      lock.release();
      log.info("petrel stopped");
    },
  };
}

let idCounter = 0;
const idSalt = crypto.randomBytes(2).toString("hex").toUpperCase();

/** Queue ids: time, a per-process salt and a counter; short, sortable, unique across restarts. */
export function newQueueId(): string {
  idCounter = (idCounter + 1) % 1679616;
  return `${Date.now().toString(36).toUpperCase()}${idSalt}${idCounter.toString(36).toUpperCase().padStart(4, "0")}`;
}


/** DKIM signing of what leaves: keys under [dkim] key_dir (relative to data_dir), read as they change. */
function dkimSigner(config: LoadedConfig, log: Logger): OutboundSigner {
  const k = config.dkim;
  const signer = new OutboundSigner({ keys: new DkimKeyStore(path.resolve(config.data_dir, k.key_dir)), headers: k.headers, oversign: k.oversign, open: crlfContent, log });
  void signer.logKeys();
  return signer;
}

interface Relay {
  readonly etrn: { flush(domain: string, subdomains: boolean): Promise<number>; isLocalDomain(domain: string): boolean };
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The outbound half: queue state, routing (MX or smarthost), the SMTP transport, bounces, the runner
 * and its scheduler, the sendmail pickup and the control socket. New queue entries (the spool's
 * commits, bounces, picked-up mail) are sent at once; deferred ones when due.
 */
function startRelay(config: LoadedConfig, log: Logger, store: AccountStore, spool: Spool, policy: RecipientPolicy): Relay {
  const d = config.delivery;
  const relayLog = log.child({ component: "relay" });
  const queueDir = path.join(config.data_dir, "queue");
  const state = new QueueState(queueDir);
  const password = d.smarthost_password ?? (d.smarthost_password_file ? fs.readFileSync(d.smarthost_password_file, "utf8").split(/\r?\n/)[0] : undefined);
  const transport = new SmtpTransport({
    ...(config.dkim.sign ? { signer: dkimSigner(config, relayLog) } : {}),
    helo: config.hostname,
    requireTls: d.require_tls,
    requireTlsDomains: d.require_tls_domains,
    ...(d.smarthost
      ? { smarthost: { security: d.smarthost_security, verifyCertificate: d.smarthost_verify, ...(d.smarthost_username && password ? { auth: { user: d.smarthost_username, password } } : {}) } }
      : {}),
  });
  const router = makeRouter({ servers: config.dns.servers, localNames: [config.hostname], localDomains: config.domains, mxPort: d.mx_port, ...(d.smarthost ? { smarthost: d.smarthost } : {}) });
  /** Where an address leads when Petrel itself sends (bounces, sendmail): relay allowed. */
  const decide: RouteOf = (address) => {
    const a = parseAddress(address);
    if (!a) return { refused: reply(553, "5.1.3", `<${address}>: bad address syntax`) };
    const decision = policy.checkRecipient(a, undefined, true);
    return decision.route ? { route: decision.route } : { refused: decision.reply };
  };
  let scheduler: QueueScheduler | null = null;
  const kick = () => scheduler?.kick();
  const bounceSender = new BounceSender({ hostname: config.hostname, spool, routeOf: decide, newId: newQueueId, log: relayLog, onQueued: kick });
  const runner = new QueueRunner({
    queueDir,
    state,
    router,
    transport,
    retry: { schedule: d.retry_schedule, maxQueueAge: d.max_queue_age, jitter: 0.1 },
    concurrency: { total: d.max_concurrency, perDestination: d.destination_concurrency },
    delayWarning: d.delay_warning,
    bounces: bounceSender,
    log: relayLog,
  });
  const pickup = new MaildropPickup({ dataDir: config.data_dir, hostname: config.hostname, spool, routeOf: decide, report: (m, failed, action) => bounceSender.report(m, failed, action), newId: newQueueId, log: relayLog, onQueued: kick });
  scheduler = new QueueScheduler(
    {
      runOnce: async (domain) => {
        if (domain === undefined) await pickup.run();
        return runner.runOnce(domain);
      },
      nextDue: () => runner.nextDue(),
    },
    { idleMs: d.queue_run_interval * 1000, onError: (err) => relayLog.error({ err }, "queue run failed") },
  );
  spool.onQueued = kick;
  const flush = async (domain: string | undefined, subdomains: boolean): Promise<number> => {
    const n = await runner.flush(domain, subdomains);
    scheduler?.kick();
    return n;
  };
  const control = new ControlServer(
    config.data_dir,
    async (req): Promise<ControlAnswer> => {
      if (req.cmd === "ping") return { ok: true };
      if (req.cmd === "pickup") {
        const picked = await pickup.run();
        return { ok: true, picked };
      }
      // A delivery of the message in progress ends first (its result would race the administrator's).
      if ((req.cmd === "delete" || req.cmd === "bounce") && !(await runner.idle(req.id, 3000)))
        return { ok: false, error: `${req.id} is being delivered right now; try again in a moment` };
      if (req.cmd === "bounce") {
        const entry = await readEntry(queueDir, state, req.id);
        if (!entry) return { ok: false, error: `no queue entry ${req.id}` };
        const result = runner.returnToSender(entry);
        if (result.kind === "busy") return { ok: false, error: `${req.id} is being delivered right now; try again in a moment` };
        relayLog.info({ id: req.id, recipients: result.recipients }, "queue entry returned to its sender by the administrator");
        scheduler?.kick();
        return { ok: true, recipients: result.recipients };
      }
      if (req.cmd === "delete") {
        const found = await deleteEntry(queueDir, state, req.id);
        relayLog.info({ id: req.id, found }, "queue entry deleted by the administrator");
        return found ? { ok: true } : { ok: false, error: `no queue entry ${req.id}` };
      }
      return { ok: true, messages: await flush(req.domain, false) };
    },
    relayLog,
  );
  return {
    etrn: { flush: (domain, subdomains) => flush(domain, subdomains), isLocalDomain: (domain) => store.isLocalDomain(domain) },
    async start() {
      try {
        await control.start();
      } catch (err) {
        relayLog.warn({ err: (err as Error).message }, "control socket unavailable: queue flush and sendmail's pickup request wait for the next queue run");
      }
      scheduler?.start();
    },
    /**
     * Stops planning runs; a run in progress (an SMTP session may wait minutes for a slow peer) gets
     * the shutdown grace period. A result that arrives after the state is closed is lost, so that
     * message is tried again after the restart (the one duplicate SMTP itself allows).
     */
    async stop() {
      spool.onQueued = undefined;
      const graceMs = config.limits.shutdown_grace * 1000;
      await Promise.race([scheduler?.stop(), new Promise((r) => setTimeout(r, graceMs).unref())]);
      await control.stop();
      await transport.close();
      state.close();
    },
  };
}
