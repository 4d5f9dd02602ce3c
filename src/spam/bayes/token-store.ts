// The Bayes token counts in SQLite (better-sqlite3): per token how many trained spam and ham messages
// held it, the number of trained messages per class, and a record of every trained message (by digest)
// so training is idempotent and a message moved out of Junk can be unlearned exactly (learnFromMove).
// One database for the server ([spam] bayes_scope = "global") or one per user, under data_dir/bayes/
// (folder 0700, files 0600, like the account store). Trusts the tokens it is given; writes are
// BEGIN IMMEDIATE transactions, so the CLI can train while the server classifies (WAL).
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { UsageError } from "../../core/errors.js";
import { preparePrivateDir } from "../../store/data-dir.js";
import { openPrivateDatabase } from "../../store/private-database.js";
import type { TokenCounts, TrainedTotals } from "./classifier.js";
import { TOKENIZER_VERSION } from "./tokenizer.js";

export type TrainClass = "spam" | "ham";

/** learned: new; already: trained as this class before (nothing changed); relearned: moved from the other class. */
export type LearnOutcome = "learned" | "already" | "relearned";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, spam INTEGER NOT NULL, ham INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY CHECK (id = 1), spam INTEGER NOT NULL, ham INTEGER NOT NULL);
INSERT OR IGNORE INTO totals (id, spam, ham) VALUES (1, 0, 0);
CREATE TABLE IF NOT EXISTS trained (digest TEXT PRIMARY KEY, class TEXT NOT NULL CHECK (class IN ('spam', 'ham')), at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

/**
 * The database of a scope: data_dir/bayes/global.db, or data_dir/bayes/users/<address>.db with the
 * canonical address made safe as a file name (anything but letters, digits, "@._+=-" percent-encoded,
 * and a leading dot too, so no name can leave the folder or hide).
 */
export function bayesDatabasePath(dataDir: string, user: string | null): string {
  if (user === null) return path.join(dataDir, "bayes", "global.db");
  const safe = user.replace(/[^A-Za-z0-9@._+=-]|^\./gu, (c) => [...Buffer.from(c, "utf8")].map((b) => `%${b.toString(16).padStart(2, "0")}`).join(""));
  return path.join(dataDir, "bayes", "users", `${safe}.db`);
}

export class TokenStore {
  private readonly db: Database.Database;
  private readonly lookup: Database.Statement<[string], { token: string; spam: number; ham: number }>;
  private readonly addSpam: Database.Statement<[{ token: string; n: number }]>;
  private readonly addHam: Database.Statement<[{ token: string; n: number }]>;
  private readonly dropSpam: Database.Statement<[string]>;
  private readonly dropHam: Database.Statement<[string]>;
  private readonly prune: Database.Statement<[string]>;
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(db: Database.Database, readonly file: string) {
    this.db = db;
    this.lookup = db.prepare("SELECT token, spam, ham FROM tokens WHERE token IN (SELECT value FROM json_each(?))");
    this.addSpam = db.prepare("INSERT INTO tokens (token, spam, ham) VALUES (@token, @n, 0) ON CONFLICT (token) DO UPDATE SET spam = spam + @n");
    this.addHam = db.prepare("INSERT INTO tokens (token, spam, ham) VALUES (@token, 0, @n) ON CONFLICT (token) DO UPDATE SET ham = ham + @n");
    this.dropSpam = db.prepare("UPDATE tokens SET spam = spam - 1 WHERE token = ? AND spam > 0");
    this.dropHam = db.prepare("UPDATE tokens SET ham = ham - 1 WHERE token = ? AND ham > 0");
    this.prune = db.prepare("DELETE FROM tokens WHERE token = ? AND spam = 0 AND ham = 0");
  }

  /** Opens (creating when missing) a database to train. Throws UsageError when it cannot. */
  static openForTraining(file: string): TokenStore {
    const dir = path.dirname(file);
    if (path.basename(dir) === "users") preparePrivateDir(path.dirname(dir)); // data_dir/bayes
    preparePrivateDir(dir);
    let db: Database.Database | undefined;
    try {
      // Losing the last trainings to a power cut costs little; an fsync per message would cost a lot.
      db = openPrivateDatabase(file, "NORMAL").db;
      db.exec(SCHEMA);
      db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('tokenizer_version', ?)").run(String(TOKENIZER_VERSION));
    } catch (err) {
      db?.close();
      throw err instanceof UsageError ? err : new UsageError(`Cannot open ${file}: ${(err as Error).message}`);
    }
    return new TokenStore(db, file);
  }

  /** Opens an existing database to classify; null when none was trained yet. Never creates anything. */
  static openForReading(file: string): TokenStore | null {
    if (!fs.existsSync(file)) return null;
    try {
      const db = new Database(file, { readonly: true, fileMustExist: true });
      db.pragma("busy_timeout = 5000");
      return new TokenStore(db, file);
    } catch {
      return null;
    }
  }

  totals(): TrainedTotals {
    return this.statement<[], { spam: number; ham: number }>("SELECT spam, ham FROM totals WHERE id = 1").get() ?? { spam: 0, ham: 0 };
  }

  /** The counts of those tokens the database knows (one query). */
  counts(tokens: readonly string[]): Map<string, TokenCounts> {
    const map = new Map<string, TokenCounts>();
    for (const row of this.lookup.all(JSON.stringify(tokens))) map.set(row.token, { spam: row.spam, ham: row.ham });
    return map;
  }

  /** The class a message (by digest) was trained as, if it was. */
  trainedAs(digest: string): TrainClass | null {
    const row = this.statement<[string], { class: TrainClass }>("SELECT class FROM trained WHERE digest = ?").get(digest);
    return row?.class ?? null;
  }

  /** Counts a message's tokens as `cls`; trained before as the other class, it is moved over. */
  learn(digest: string, tokens: readonly string[], cls: TrainClass): LearnOutcome {
    return this.learnMany([{ digest, tokens }], cls)[0]!;
  }

  /**
   * learn() for many messages in one transaction, each token written once with the batch's count for it
   * (bulk training from the CLI writes a fraction of the rows one message at a time would).
   */
  learnMany(messages: readonly { readonly digest: string; readonly tokens: readonly string[] }[], cls: TrainClass): LearnOutcome[] {
    return this.transaction(() => {
      const adds = new Map<string, number>();
      const seen = new Set<string>();
      let learned = 0;
      const outcomes = messages.map((m): LearnOutcome => {
        const before = this.trainedAs(m.digest);
        // The same message twice in one batch counts once, like the same message in two runs.
        if (before === cls || seen.has(m.digest)) return "already";
        seen.add(m.digest);
        if (before !== null) this.uncount(m.digest, m.tokens, before);
        for (const t of m.tokens) adds.set(t, (adds.get(t) ?? 0) + 1);
        this.statement<[string, TrainClass, number]>("INSERT INTO trained (digest, class, at) VALUES (?, ?, ?)").run(m.digest, cls, Math.floor(Date.now() / 1000));
        learned++;
        return before === null ? "learned" : "relearned";
      });
      const add = cls === "spam" ? this.addSpam : this.addHam;
      for (const [token, n] of adds) add.run({ token, n });
      this.statement<[number]>(`UPDATE totals SET ${cls} = ${cls} + ? WHERE id = 1`).run(learned);
      return outcomes;
    });
  }

  /** Takes back a trained message; false when it was never trained. */
  unlearn(digest: string, tokens: readonly string[]): boolean {
    return this.transaction(() => {
      const before = this.trainedAs(digest);
      if (before === null) return false;
      this.uncount(digest, tokens, before);
      return true;
    });
  }

  /** Runs fn in one BEGIN IMMEDIATE transaction (nested calls join it): many trainings, one commit. */
  transaction<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    return this.db.transaction(fn).immediate();
  }

  close(): void {
    this.db.close();
  }

  /** A prepared statement, compiled once per store. */
  private statement<P extends unknown[], R = unknown>(sql: string): Database.Statement<P, R> {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st as unknown as Database.Statement<P, R>;
  }

  private uncount(digest: string, tokens: readonly string[], cls: TrainClass): void {
    // The tokens come from the same bytes, so they are the ones counted (same tokenizer version);
    // counts never go below zero should the tokenizer have changed since.
    const drop = cls === "spam" ? this.dropSpam : this.dropHam;
    for (const t of tokens) {
      drop.run(t);
      this.prune.run(t);
    }
    this.statement<[]>(`UPDATE totals SET ${cls} = max(${cls} - 1, 0) WHERE id = 1`).run();
    this.statement<[string]>("DELETE FROM trained WHERE digest = ?").run(digest);
  }
}
