// Structured JSON logs (pino) on stdout. One root logger is built in main and passed down;
// sessions take a child logger carrying their session id. AUTH secrets are never logged.
// Lines go through a LogSink (log-sink.ts) that never blocks the server on a slow log reader.
import { pino, type Logger } from "pino";
import { openLogSink, type LogSink } from "./log-sink.js";
export type { Logger };

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text);
}

export interface RootLogger {
  readonly log: Logger;
  /** Writes out what is queued, giving up after timeoutMs (shutdown must always finish). */
  flush(timeoutMs: number): Promise<void>;
}

export function createLogger(level: LogLevel, sink: LogSink = openLogSink(1)): RootLogger {
  const log = pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, sink);
  return { log, flush: (ms) => sink.flush(ms) };
}

/** A logger that drops everything: for unit tests and CLI commands. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
