// Shared plumbing for the commands: one-line errors, finding and loading the config (and saying
// which one on stderr when it is not ./petrel.toml or --config), opening and always closing the
// AccountStore, and reading a password from stdin or a TTY prompt. Trusts nothing it reads: the store
// validates every address; this file only shapes input and output. stdout stays for results.
import fs from "node:fs";
import type { Command } from "commander";
import { loadConfig, SYSTEM_CONFIG, type LoadedConfig } from "../config/load.js";
import { foldCase, canonical, parseAddress } from "../core/address.js";
import { UsageError } from "../core/errors.js";
import { AccountStore } from "../store/account-store.js";

export interface ConfigOption {
  readonly config?: string;
}

export const CONFIG_HELP = "config file (default: $PETREL_CONFIG, ./petrel.toml, /etc/petrel/petrel.toml, built-in defaults)";

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

/** An address as the store keys it, for messages: canonical when it parses, else ASCII-lowercased. */
export function shown(address: string): string {
  const a = parseAddress(address);
  return a ? canonical(a) : foldCase(address);
}

/** Prints a note on stderr (never stdout, which scripts read). */
export function note(text: string): void {
  process.stderr.write(`petrel: ${text}\n`);
}

/**
 * Loads the config for any command. A file the operator did not name here (PETREL_CONFIG,
 * /etc/petrel/petrel.toml) or no file at all is announced on stderr, with the data_dir it implies.
 */
export function loadCliConfig(opts: ConfigOption): LoadedConfig {
  const config = loadConfig({ flag: opts.config });
  if (config.origin === "env") note(`using config ${config.source} (from PETREL_CONFIG)`);
  else if (config.origin === "system") note(`using config ${config.source}`);
  else if (config.origin === "defaults") note(`no config file (--config, PETREL_CONFIG, ./petrel.toml, ${SYSTEM_CONFIG}): using built-in defaults, data_dir ${config.data_dir}`);
  return config;
}

/**
 * Loads the config, opens the store, runs `fn`, closes the store. Without any config file the
 * data_dir is ./data of wherever the command runs: it must exist already, or a CLI run from the
 * wrong folder would create a second, empty account database the server never sees.
 */
export async function withStore<T>(opts: ConfigOption, fn: (store: AccountStore, config: LoadedConfig) => T | Promise<T>): Promise<T> {
  const config = loadCliConfig(opts);
  if (config.origin === "defaults" && !fs.existsSync(config.data_dir))
    throw new UsageError(`data_dir ${config.data_dir} does not exist; pass --config FILE or set PETREL_CONFIG (petrel serve creates it on first start)`);
  const store = new AccountStore(config.data_dir, config.domains);
  for (const change of store.narrowed) note(`made data_dir private: ${change}`);
  try {
    return await fn(store, config);
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
