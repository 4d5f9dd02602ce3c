// petrel serve: runs the server in the foreground with JSON logs on stdout.
// SIGTERM or SIGINT: stop accepting, let transactions in flight finish (limits.shutdown_grace), exit 0;
// a second SIGTERM/SIGINT exits at once (1). SIGHUP re-reads the config: a bad file is logged and the
// running one kept; what applies live is applied, what needs a restart is named. Shutdown always ends
// in exit, however slow the log reader is (core/log-sink.ts).
import type { Command } from "commander";
import { loadConfig, type LoadedConfig } from "../config/load.js";
import { UsageError } from "../core/errors.js";
import { createLogger, isLogLevel, LOG_LEVELS, type LogLevel } from "../core/log.js";
import { startServer } from "../main.js";
import { CONFIG_HELP, loadCliConfig } from "./context.js";

/** How long the last log lines may take to reach a slow reader before the process exits anyway. */
const LOG_FLUSH_MS = 2000;

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run the mail server in the foreground (JSON logs on stdout)")
    .option("--config <file>", CONFIG_HELP)
    .action(async (opts: { config?: string }) => {
      const config = loadCliConfig(opts);
      const envLevel = logLevelFromEnv();
      const root = createLogger(envLevel ?? config.log.level);
      const log = root.log;
      const exit = (code: number): void => {
        void root.flush(LOG_FLUSH_MS).then(() => process.exit(code));
      };
      const server = await startServer(config, log).catch((err: NodeJS.ErrnoException) => {
        log.fatal({ err }, "cannot start");
        console.error(`petrel: cannot start: ${err.message}`);
        return null;
      });
      if (!server) return exit(1);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          log.warn({ signal }, "second signal: exiting without waiting for transactions in flight");
          return exit(1);
        }
        stopping = true;
        log.info({ signal }, "shutting down");
        server.stop().then(
          () => exit(0),
          (err) => {
            log.fatal({ err }, "shutdown failed");
            exit(1);
          },
        );
      };
      let running: LoadedConfig = config;
      const reload = () => {
        // First, and whatever the config says: certbot renews the files without touching the config.
        server.reloadTls();
        let next: LoadedConfig;
        try {
          next = loadConfig(opts.config);
        } catch (err) {
          log.error({ error: (err as Error).message }, "reload refused: the config file is not valid; the running configuration stays");
          return;
        }
        log.level = envLevel ?? next.log.level;
        const restart = restartNeeded(running, next);
        running = next;
        log.info({ config: next.source, restart_needed: restart }, "reloaded: log level and TLS certificate applied; users, aliases and lists are always live");
      };
      process.on("SIGTERM", () => stop("SIGTERM"));
      process.on("SIGINT", () => stop("SIGINT"));
      process.on("SIGHUP", reload);
    });
}

function logLevelFromEnv(): LogLevel | undefined {
  const v = process.env.PETREL_LOG_LEVEL;
  if (v === undefined || v === "") return undefined;
  if (!isLogLevel(v)) throw new UsageError(`PETREL_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")} (got ${JSON.stringify(v)})`);
  return v;
}

/** Top-level config keys whose change a running server does not pick up. */
function restartNeeded(a: LoadedConfig, b: LoadedConfig): string[] {
  const keys = ["hostname", "domains", "data_dir", "listen", "limits", "smtp", "pop3", "tls", "delivery", "dns"] as const;
  return keys.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}
