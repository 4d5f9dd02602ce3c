// Finds, loads and validates petrel.toml, and resolves paths in it. The file is the one given with
// --config, else $PETREL_CONFIG, else ./petrel.toml, else /etc/petrel/petrel.toml, else none (built-in
// defaults). A relative data_dir or tls file is taken from the config file's folder, or from the
// working folder without one. Every error is a one-line UsageError naming the file and the key.
import fs from "node:fs";
import path from "node:path";
import { parse as parseToml } from "smol-toml";
import type { z } from "zod";
import { UsageError } from "../core/errors.js";
import { configSchema, type Config } from "./schema.js";

export const SYSTEM_CONFIG = "/etc/petrel/petrel.toml";

/** Where the config came from: how the operator chose it (or did not). */
export type ConfigOrigin = "flag" | "env" | "cwd" | "system" | "defaults";

export interface LoadedConfig extends Config {
  /** The file it came from, or null for built-in defaults. */
  readonly source: string | null;
  readonly origin: ConfigOrigin;
}

export interface ConfigSearch {
  readonly flag?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** /etc/petrel/petrel.toml; tests point it elsewhere. */
  readonly systemPath?: string;
}

/** The config file to read, in the order above; an explicit --config or PETREL_CONFIG need not exist (that is an error later). */
export function findConfig(search: ConfigSearch = {}): { source: string | null; origin: ConfigOrigin } {
  const cwd = search.cwd ?? process.cwd();
  if (search.flag) return { source: path.resolve(cwd, search.flag), origin: "flag" };
  const env = (search.env ?? process.env).PETREL_CONFIG;
  if (env) return { source: path.resolve(cwd, env), origin: "env" };
  const local = path.resolve(cwd, "petrel.toml");
  if (fs.existsSync(local)) return { source: local, origin: "cwd" };
  const system = search.systemPath ?? SYSTEM_CONFIG;
  if (fs.existsSync(system)) return { source: system, origin: "system" };
  return { source: null, origin: "defaults" };
}

export function loadConfig(search: ConfigSearch | string = {}): LoadedConfig {
  const s = typeof search === "string" ? { flag: search } : search;
  const { source, origin } = findConfig(s);
  let raw: unknown = {};
  if (source) {
    let text: string;
    try {
      text = fs.readFileSync(source, "utf8");
    } catch (err) {
      throw new UsageError(`Cannot read config ${source}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    try {
      raw = parseToml(text);
    } catch (err) {
      throw new UsageError(`Cannot parse config ${source}: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  return validateConfig(raw, source, origin, s.cwd);
}

export function validateConfig(raw: unknown, source: string | null, origin: ConfigOrigin = source ? "flag" : "defaults", cwd = process.cwd()): LoadedConfig {
  const invalid = (why: string) => new UsageError(`Invalid config ${source ?? "(defaults)"}: ${why.replace(/\s*\n\s*/g, " ")}`);
  const result = configSchema.safeParse(raw);
  if (!result.success) throw invalid(result.error.issues.map(describeIssue).join("; "));
  const cfg = result.data;
  const base = source ? path.dirname(source) : cwd;
  const tls = { ...cfg.tls };
  for (const key of ["cert", "key"] as const) {
    const file = tls[key];
    if (file === undefined) continue;
    tls[key] = path.resolve(base, file);
    try {
      fs.accessSync(tls[key], fs.constants.R_OK);
    } catch (err) {
      throw invalid(`tls.${key}: cannot read ${tls[key]}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) throw invalid("tls.cert and tls.key go together: give both or neither");
  const delivery = { ...cfg.delivery };
  if (delivery.smarthost_password !== undefined && delivery.smarthost_password_file !== undefined)
    throw invalid("delivery.smarthost_password and delivery.smarthost_password_file: give one of them, not both");
  if (delivery.smarthost_password_file !== undefined) {
    delivery.smarthost_password_file = path.resolve(base, delivery.smarthost_password_file);
    try {
      fs.accessSync(delivery.smarthost_password_file, fs.constants.R_OK);
    } catch (err) {
      throw invalid(`delivery.smarthost_password_file: cannot read ${delivery.smarthost_password_file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  if ((delivery.smarthost_password !== undefined || delivery.smarthost_password_file !== undefined) && delivery.smarthost_username === undefined)
    throw invalid("delivery.smarthost_username: needed with a smarthost password");
  return { ...cfg, tls, delivery, data_dir: path.resolve(base, cfg.data_dir), source, origin };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.join(".");
  if (issue.code === "unrecognized_keys") {
    const names = issue.keys.map((k) => (key ? `${key}.${k}` : k));
    return `unknown key ${names.join(", ")}`;
  }
  return `${key || "(top level)"}: ${issue.message}`;
}
