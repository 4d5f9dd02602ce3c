// Structured JSON logs (pino) on stdout. One root logger is built in main and passed down;
// sessions take a child logger carrying their session id. AUTH secrets are never logged.
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(level: string = process.env.PETREL_LOG_LEVEL ?? "info"): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** A logger that drops everything: for unit tests and CLI commands. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
