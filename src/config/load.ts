// Loads petrel.toml (or the built-in defaults), validates it, and resolves data_dir.
// A relative data_dir is taken from the config file's folder, or from the working folder without one.
import fs from "node:fs";
import path from "node:path";
import { parse as parseToml } from "smol-toml";
import type { z } from "zod";
import { UsageError } from "../core/errors.js";
import { configSchema, type Config } from "./schema.js";

export interface LoadedConfig extends Config {
  /** The file it came from, or null for built-in defaults. */
  readonly source: string | null;
}

export function defaultConfigPath(): string | null {
  const p = path.resolve("petrel.toml");
  return fs.existsSync(p) ? p : null;
}

export function loadConfig(file?: string): LoadedConfig {
  const source = file ? path.resolve(file) : defaultConfigPath();
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
  return validateConfig(raw, source);
}

export function validateConfig(raw: unknown, source: string | null): LoadedConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new UsageError(`Invalid config ${source ?? "(defaults)"}: ${result.error.issues.map(describeIssue).join("; ").replace(/\s*\n\s*/g, " ")}`);
  const cfg = result.data;
  const base = source ? path.dirname(source) : process.cwd();
  return { ...cfg, data_dir: path.resolve(base, cfg.data_dir), source };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.join(".");
  if (issue.code === "unrecognized_keys") {
    const names = issue.keys.map((k) => (key ? `${key}.${k}` : k));
    return `unknown key ${names.join(", ")}`;
  }
  return `${key || "(top level)"}: ${issue.message}`;
}
