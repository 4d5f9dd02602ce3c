// Shared plumbing for the account commands (user, alias, list): one-line errors, --config loading,
// opening and always closing the AccountStore, and reading a password from stdin or a TTY prompt.
// Trusts nothing it reads: the store validates every address; this file only shapes input and output.
import type { Command } from "commander";
import { loadConfig } from "../config/load.js";
import { UsageError } from "../core/errors.js";
import { AccountStore } from "../store/account-store.js";

export interface ConfigOption {
  readonly config?: string;
}

/**
 * Makes a command group report parse errors (unknown option, missing argument) as exactly one line,
 * "petrel: <message>", like the errors thrown by actions. Call before adding subcommands: they
 * inherit these settings.
 */
export function oneLineErrors(group: Command): Command {
  return group
    .showHelpAfterError(false)
    .configureOutput({ outputError: (str, write) => write(`petrel: ${str.replace(/^error: /, "")}`) });
}

/** Loads the config named by --config (or ./petrel.toml), opens the store, runs `fn`, closes the store. */
export async function withStore<T>(opts: ConfigOption, fn: (store: AccountStore) => T | Promise<T>): Promise<T> {
  const config = loadConfig(opts.config);
  const store = new AccountStore(config.data_dir, config.domains);
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

/** The first line of stdin with trailing CR/LF removed; prompts without echo when stdin is a terminal. */
export async function readPassword(prompt = "Password: "): Promise<string> {
  const stdin = process.stdin;
  return stdin.isTTY ? promptHidden(prompt) : readFirstLine(stdin);
}

async function readFirstLine(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    chunks.push(buf);
    // Stop at the first line break: the writer need not close the pipe.
    if (buf.includes(0x0a)) break;
  }
  const text = Buffer.concat(chunks).toString("utf8");
  const nl = text.indexOf("\n");
  return (nl < 0 ? text : text.slice(0, nl)).replace(/[\r\n]+$/, "");
}

function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.setEncoding("utf8");
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = "";
    const finish = (err: Error | null): void => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (data: string): void => {
      for (const ch of data) {
        if (ch === "\r" || ch === "\n" || ch === "\u0004") return finish(null);
        if (ch === "\u0003") return finish(new UsageError("Cancelled"));
        if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on("data", onData);
  });
}
