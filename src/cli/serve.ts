// petrel serve: runs the server in the foreground with JSON logs on stdout. SIGTERM or SIGINT stop
// accepting, let transactions in flight finish (limits.shutdown_grace), and exit 0.
import type { Command } from "commander";
import { loadConfig } from "../config/load.js";
import { createLogger } from "../core/log.js";
import { startServer } from "../main.js";

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run the mail server in the foreground (JSON logs on stdout)")
    .option("--config <file>", "config file (default ./petrel.toml when present, else built-in defaults)")
    .action(async (opts: { config?: string }) => {
      const config = loadConfig(opts.config);
      const log = createLogger(process.env.PETREL_LOG_LEVEL ?? config.log.level);
      const server = await startServer(config, log).catch((err: NodeJS.ErrnoException) => {
        log.fatal({ err }, "cannot start");
        console.error(`petrel: cannot start: ${err.message}`);
        process.exit(1);
      });
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, "shutting down");
        server.stop().then(
          () => process.exit(0),
          (err) => {
            log.fatal({ err }, "shutdown failed");
            process.exit(1);
          },
        );
      };
      process.on("SIGTERM", () => stop("SIGTERM"));
      process.on("SIGINT", () => stop("SIGINT"));
    });
}
