// Wires Petrel together explicitly: config → account store, spool, policy → listeners (SMTP, POP3).
// Nothing registers itself; everything a component needs is passed to its constructor.
import crypto from "node:crypto";
import { Authenticator } from "./auth/authenticator.js";
import { FailureThrottle } from "./auth/failure-throttle.js";
import { HashPool } from "./auth/hash-pool.js";
import type { LoadedConfig } from "./config/load.js";
import { UsageError } from "./core/errors.js";
import type { Logger } from "./core/log.js";
import { mailboxPath } from "./mailbox/maildir.js";
import { ApopTimestamps } from "./pop3-server/apop.js";
import { Maildrop } from "./pop3-server/maildrop.js";
import { MaildropLocks } from "./pop3-server/maildrop-locks.js";
import { Pop3Session } from "./pop3-server/session.js";
import { DataDirLock } from "./recovery/data-dir-lock.js";
import { recoverDataDir } from "./recovery/startup-recovery.js";
import { TcpListener, type BoundAddress } from "./protocol/tcp-listener.js";
import { RecipientPolicy } from "./smtp-server/recipient-policy.js";
import { SmtpSession } from "./smtp-server/session.js";
import { Spool } from "./spool/spool.js";
import { AccountStore } from "./store/account-store.js";
import { preparePrivateDir } from "./store/data-dir.js";

export interface RunningServer {
  readonly addresses: readonly BoundAddress[];
  /** Stops accepting, lets transactions in flight finish (bounded), closes the store. */
  stop(): Promise<void>;
}

export async function startServer(config: LoadedConfig, log: Logger): Promise<RunningServer> {
  // Only these start today; submission, submissions and pop3s wait for their issues.
  if (config.listen.smtp.length === 0 && config.listen.pop3.length === 0)
    throw new UsageError("no listeners configured: listen.smtp and listen.pop3 are both empty");
  // Before anything writes: a private data_dir (a clear error when it cannot be used), one server
  // per data_dir, then finish or sweep what a crash left.
  for (const change of preparePrivateDir(config.data_dir)) log.warn({ change }, "made data_dir private");
  const lock = DataDirLock.acquire(config.data_dir);
  try {
    log.info(await recoverDataDir(config.data_dir), "recovered");
  } catch (err) {
    lock.release();
    throw err;
  }
  const store = new AccountStore(config.data_dir, config.domains);
  for (const change of store.narrowed) log.warn({ change }, "made data_dir private");
  const spool = new Spool(config.data_dir, log);
  const policy = new RecipientPolicy(store, {
    vrfy: config.smtp.vrfy,
    expn: config.smtp.expn,
    forwardOffsite: config.smtp.forward_offsite,
    search: config.smtp.vrfy_search,
    domains: config.domains,
    delimiter: config.smtp.recipient_delimiter,
  });
  const limits = config.limits;
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
  };
  const pop3Options = {
    hostname: config.hostname,
    idleTimeoutMs: config.pop3.idle_timeout * 1000,
    maxAuthFailures: config.pop3.max_auth_failures,
    authFailureDelayMs: config.pop3.auth_failure_delay * 1000,
    maxCommands: limits.max_junk_commands,
  };
  const maildropLocks = new MaildropLocks();
  const apopTimestamps = new ApopTimestamps(config.hostname);
  const listeners: TcpListener[] = [
    new TcpListener(
      {
        name: "smtp",
        addresses: config.listen.smtp,
        maxConnections: limits.max_connections,
        busyReply: `421 4.7.0 ${config.hostname} Error: too many connections, try again later\r\n`,
        createSession: (socket, sessionLog) =>
          new SmtpSession(socket, { options: smtpOptions, policy, store: spool, log: sessionLog, newId: newQueueId }),
      },
      log,
    ),
    // POP3 over TLS (listen.pop3s) waits for the TLS issue; only plain POP3 starts here.
    new TcpListener(
      {
        name: "pop3",
        addresses: config.listen.pop3,
        maxConnections: limits.max_connections,
        busyReply: "-ERR [SYS/TEMP] too many connections, try again later\r\n",
        createSession: (socket, sessionLog) =>
          new Pop3Session(socket, {
            options: pop3Options,
            accounts: authenticator,
            locks: maildropLocks,
            timestamps: apopTimestamps,
            openMaildrop: (address) => Maildrop.open(mailboxPath(config.data_dir, address)),
            log: sessionLog,
          }),
      },
      log,
    ),
  ];
  const addresses: BoundAddress[] = [];
  try {
    for (const l of listeners) addresses.push(...(await l.start()));
  } catch (err) {
    await Promise.all(listeners.map((l) => l.stop(0)));
    await hashPool.close();
    store.close();
    lock.release();
    throw err;
  }
  log.info({ hostname: config.hostname, domains: config.domains, data_dir: config.data_dir, config: config.source }, "petrel started");
  return {
    addresses,
    async stop() {
      await Promise.all(listeners.map((l) => l.stop(limits.shutdown_grace * 1000)));
      await hashPool.close();
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
