// Users, aliases and mailing lists in SQLite (better-sqlite3) under data_dir. WAL mode and a busy
// timeout make it safe for the CLI to change accounts while the server reads them; every change is
// one SQLite transaction taken with BEGIN IMMEDIATE (a deferred one that later writes fails with
// SQLITE_BUSY under concurrent writers), so nothing is half-written. Addresses are stored canonical
// (ASCII-lowercase). The folder is 0700 and the database files 0600 (./data-dir.ts).
import path from "node:path";
import Database from "better-sqlite3";
import { foldCase, canonical, formatAddress, isValidDomain, parseAddress, type Address } from "../core/address.js";
import { UsageError } from "../core/errors.js";
import { createPrivateFile, narrowPrivateFiles, preparePrivateDir } from "./data-dir.js";
import { hashPassword, verifyPassword } from "./password.js";

export interface User {
  readonly address: string;
  readonly name: string | null;
  readonly hasApop: boolean;
}

export type Entry =
  | { readonly kind: "user"; readonly user: User }
  | { readonly kind: "alias"; readonly address: string; readonly targets: readonly string[] }
  | { readonly kind: "list"; readonly address: string; readonly members: readonly string[] };

/** One target of an alias or member of a list, with what it names here (null: nothing local). */
export interface Target {
  readonly address: string;
  readonly kind: Entry["kind"] | null;
}

/** What `deleteUser` also removed, so the CLI can say so. */
export interface UserRemoval {
  readonly lists: readonly string[];
  readonly aliases: readonly string[];
}

export interface TargetOptions {
  /** Allow local targets that name no user, alias or list (yet). */
  readonly force?: boolean;
  /** smtp.recipient_delimiter: with "+", a target alice+tag@ exists when alice@ does. */
  readonly delimiter?: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  address TEXT PRIMARY KEY, local TEXT NOT NULL, domain TEXT NOT NULL, name TEXT,
  password TEXT NOT NULL, apop_secret TEXT, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS aliases (alias TEXT NOT NULL, target TEXT NOT NULL, PRIMARY KEY (alias, target));
CREATE TABLE IF NOT EXISTS lists (list TEXT NOT NULL, member TEXT NOT NULL, PRIMARY KEY (list, member));
`;

// Local parts of mailboxes become folder names: keep them to a safe set (no "/", no leading ".").
const SAFE_MAILBOX_LOCAL = /^[a-z0-9_+\-=][a-z0-9._+\-=]*$/;

export class AccountStore {
  private readonly db: Database.Database;
  private readonly domains: ReadonlySet<string>;
  private readonly statements = new Map<string, Database.Statement>();
  /** Permission changes made while opening (a data_dir or database readable by others). */
  readonly narrowed: readonly string[];

  constructor(dataDir: string, domains: readonly string[]) {
    const narrowed = preparePrivateDir(dataDir);
    const file = path.join(dataDir, "petrel.db");
    const files = [file, `${file}-wal`, `${file}-shm`];
    // Before opening: SQLite creates -wal and -shm with the database file's mode.
    narrowed.push(...narrowPrivateFiles(files));
    createPrivateFile(file);
    try {
      this.db = new Database(file);
      // The busy timeout first: switching a new database to WAL takes a lock other CLI runs may hold.
      this.db.pragma("busy_timeout = 5000");
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = FULL");
      this.db.exec(SCHEMA);
    } catch (err) {
      throw new UsageError(`Cannot open ${file}: ${(err as Error).message}`);
    }
    narrowed.push(...narrowPrivateFiles(files));
    this.narrowed = narrowed;
    this.domains = new Set(domains.map(foldCase));
  }

  close(): void {
    this.db.close();
  }

  /** Prepared statements are compiled once and reused: lookups run on every RCPT. */
  private stmt(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) this.statements.set(sql, (st = this.db.prepare(sql)));
    return st;
  }

  isLocalDomain(domain: string): boolean {
    return this.domains.has(foldCase(domain));
  }

  // ---- lookups (used by the SMTP and POP3 servers) ----

  /** Changes whenever another connection (the CLI) commits: cached lookups are stale then. */
  dataVersion(): number {
    return this.db.pragma("data_version", { simple: true }) as number;
  }

  /** The entry named exactly by `address`; a catch-all is the alias "@domain". */
  lookup(address: string): Entry | null {
    const key = foldCase(address);
    const u = this.stmt("SELECT address, name, apop_secret FROM users WHERE address = ?").get(key) as UserRow | undefined;
    if (u) return { kind: "user", user: toUser(u) };
    const targets = this.column("SELECT target FROM aliases WHERE alias = ? ORDER BY rowid", key);
    if (targets.length) return { kind: "alias", address: key, targets };
    const members = this.column("SELECT member FROM lists WHERE list = ? ORDER BY rowid", key);
    if (members.length) return { kind: "list", address: key, members };
    return null;
  }

  getUser(address: string): User | null {
    const e = this.lookup(address);
    return e?.kind === "user" ? e.user : null;
  }

  /** Entries whose local part equals, or whose local part or display name contains, `text`. */
  search(text: string): { exact: Entry[]; partial: Entry[] } {
    const needle = text.toLowerCase();
    const all = this.allNames();
    const exact = all.filter((n) => n.address.slice(0, n.address.lastIndexOf("@")) === needle);
    const partial = all.filter(
      (n) => n.address.slice(0, n.address.lastIndexOf("@")).includes(needle) || (n.name ?? "").toLowerCase().includes(needle),
    );
    const toEntries = (xs: { address: string }[]) => xs.map((x) => this.lookup(x.address)!).filter(Boolean);
    return { exact: toEntries(exact), partial: toEntries(partial) };
  }

  /**
   * The targets of an alias or members of a list, each with the kind of entry it names, in one
   * query: a 5,000-member list is classified without 5,000 lookups.
   */
  targetsOf(kind: "alias" | "list", address: string): Target[] {
    const from = kind === "alias" ? "SELECT target AS t, rowid AS r FROM aliases WHERE alias = ?" : "SELECT member AS t, rowid AS r FROM lists WHERE list = ?";
    const rows = this.stmt(
      `SELECT c.t AS address, CASE
         WHEN EXISTS (SELECT 1 FROM users u WHERE u.address = c.t) THEN 'user'
         WHEN EXISTS (SELECT 1 FROM aliases a WHERE a.alias = c.t) THEN 'alias'
         WHEN EXISTS (SELECT 1 FROM lists l WHERE l.list = c.t) THEN 'list' END AS kind
       FROM (${from}) c ORDER BY c.r`,
    ).all(foldCase(address)) as { address: string; kind: Entry["kind"] | null }[];
    return rows;
  }

  /** Checks a password here and now (~50 ms of scrypt): for the CLI and tests. The server verifies in its hash worker. */
  checkPassword(address: string, password: string): boolean {
    const hash = this.passwordHash(address);
    return hash !== null && verifyPassword(password, hash);
  }

  /** The stored scrypt hash of a user's password, or null for no such user. */
  passwordHash(address: string): string | null {
    const row = this.stmt("SELECT password FROM users WHERE address = ?").get(foldCase(address)) as { password: string } | undefined;
    return row?.password ?? null;
  }

  apopSecret(address: string): string | null {
    const row = this.stmt("SELECT apop_secret FROM users WHERE address = ?").get(foldCase(address)) as { apop_secret: string | null } | undefined;
    return row?.apop_secret ?? null;
  }

  listUsers(): User[] {
    return (this.stmt("SELECT address, name, apop_secret FROM users ORDER BY domain, local").all() as UserRow[]).map(toUser);
  }

  listAliases(): { alias: string; targets: string[] }[] {
    const rows = this.stmt("SELECT alias, target FROM aliases ORDER BY alias, rowid").all() as { alias: string; target: string }[];
    return groupRows(rows.map((r) => [r.alias, r.target])).map(([alias, targets]) => ({ alias, targets }));
  }

  listLists(): { list: string; members: string[] }[] {
    const rows = this.stmt("SELECT list, member FROM lists ORDER BY list, rowid").all() as { list: string; member: string }[];
    return groupRows(rows.map((r) => [r.list, r.member])).map(([list, members]) => ({ list, members }));
  }

  // ---- changes (used by the CLI); each validates first and runs in one transaction ----

  addUser(address: string, password: string, opts: { name?: string; apop?: boolean } = {}): User {
    const a = this.localAddress(address);
    if (!SAFE_MAILBOX_LOCAL.test(foldCase(a.local))) throw new UsageError(`Cannot use ${formatAddress(a)} as a mailbox: use letters, digits and . _ + - = only`);
    checkPassword(password);
    const name = checkName(opts.name ?? null);
    const key = canonical(a);
    const hash = hashPassword(password);
    this.db
      .transaction(() => {
        this.assertFree(key);
        this.db
          .prepare("INSERT INTO users (address, local, domain, name, password, apop_secret, created) VALUES (?, ?, ?, ?, ?, ?, ?)")
          .run(key, foldCase(a.local), foldCase(a.domain), name, hash, opts.apop ? password : null, Date.now());
      })
      .immediate();
    return this.getUser(key)!;
  }

  /** Deletes a user and takes them out of every list and alias (an alias left empty goes too). */
  deleteUser(address: string): UserRemoval {
    const key = canonical(this.localAddress(address));
    return this.db
      .transaction((): UserRemoval => {
        const r = this.stmt("DELETE FROM users WHERE address = ?").run(key);
        if (r.changes === 0) throw new UsageError(`No such user ${key}`);
        const lists = this.column("SELECT list FROM lists WHERE member = ? ORDER BY list", key);
        const aliases = this.column("SELECT alias FROM aliases WHERE target = ? ORDER BY alias", key);
        this.stmt("DELETE FROM lists WHERE member = ?").run(key);
        this.stmt("DELETE FROM aliases WHERE target = ?").run(key);
        return { lists, aliases };
      })
      .immediate();
  }

  setPassword(address: string, password: string, opts: { apop?: boolean } = {}): void {
    const key = canonical(this.localAddress(address));
    checkPassword(password);
    const r = this.stmt("UPDATE users SET password = ?, apop_secret = ? WHERE address = ?").run(hashPassword(password), opts.apop ? password : null, key);
    if (r.changes === 0) throw new UsageError(`No such user ${key}`);
  }

  setName(address: string, name: string | null): void {
    const key = canonical(this.localAddress(address));
    const r = this.stmt("UPDATE users SET name = ? WHERE address = ?").run(checkName(name), key);
    if (r.changes === 0) throw new UsageError(`No such user ${key}`);
  }

  /** Adds targets to an alias; "@domain" is the domain's catch-all (any unknown local part). */
  addAlias(alias: string, targets: readonly string[], opts: TargetOptions = {}): void {
    const key = this.aliasKey(alias);
    this.addTargets("alias", key, this.targets(targets, key), opts);
  }

  deleteAlias(alias: string): void {
    const key = this.aliasKey(alias);
    const r = this.stmt("DELETE FROM aliases WHERE alias = ?").run(key);
    if (r.changes === 0) throw new UsageError(`No such alias ${key}`);
  }

  addListMembers(list: string, members: readonly string[], opts: TargetOptions = {}): void {
    const key = canonical(this.localAddress(list));
    this.addTargets("list", key, this.targets(members, key), opts);
  }

  /** One transaction: the entry is (or becomes) of this kind and gains every target, or nothing changes. */
  private addTargets(kind: "alias" | "list", key: string, targets: readonly string[], opts: TargetOptions): void {
    const insert = kind === "alias" ? "INSERT INTO aliases (alias, target) VALUES (?, ?)" : "INSERT INTO lists (list, member) VALUES (?, ?)";
    this.db
      .transaction(() => {
        const existing = this.lookup(key);
        if (existing && existing.kind !== kind) throw new UsageError(`${key} already exists as ${article(existing.kind)}`);
        if (!opts.force) this.assertTargetsExist(targets, opts.delimiter ?? "");
        const have = new Set(existing?.kind === "alias" ? existing.targets : existing?.kind === "list" ? existing.members : []);
        for (const t of targets) {
          if (have.has(t)) throw new UsageError(kind === "alias" ? `Alias ${key} already points to ${t}` : `${t} is already a member of ${key}`);
          this.stmt(insert).run(key, t);
        }
      })
      .immediate();
  }

  /** The members of a local list; a missing list is an error. */
  listMembers(list: string): string[] {
    const key = canonical(this.localAddress(list));
    const existing = this.lookup(key);
    if (existing?.kind !== "list") throw new UsageError(`No such list ${key}`);
    return [...existing.members];
  }

  /** Deletes the named members, or the whole list when none are named. */
  deleteList(list: string, members: readonly string[] = []): void {
    const key = canonical(this.localAddress(list));
    this.db
      .transaction(() => {
        const existing = this.lookup(key);
        if (existing?.kind !== "list") throw new UsageError(`No such list ${key}`);
        if (members.length === 0) {
          this.stmt("DELETE FROM lists WHERE list = ?").run(key);
          return;
        }
        for (const m of this.targets(members, key)) {
          if (this.stmt("DELETE FROM lists WHERE list = ? AND member = ?").run(key, m).changes === 0)
            throw new UsageError(`${m} is not a member of ${key}`);
        }
      })
      .immediate();
  }

  // ---- helpers ----

  private localAddress(text: string): Address {
    const a = parseAddress(text);
    if (!a) throw new UsageError(`Cannot parse address ${JSON.stringify(text)}`);
    if (!this.isLocalDomain(a.domain)) throw new UsageError(`Domain ${a.domain} is not local (local domains: ${[...this.domains].join(", ")})`);
    return a;
  }

  /** An alias name: a local address, or "@domain" for a local domain's catch-all. */
  private aliasKey(text: string): string {
    if (!text.startsWith("@")) return canonical(this.localAddress(text));
    const domain = text.slice(1);
    if (!isValidDomain(domain)) throw new UsageError(`Cannot parse catch-all ${JSON.stringify(text)}: expected @domain`);
    if (!this.isLocalDomain(domain)) throw new UsageError(`Domain ${domain} is not local (local domains: ${[...this.domains].join(", ")})`);
    return `@${foldCase(domain)}`;
  }

  /**
   * Refuses local targets that name nothing here: mail to them would vanish, and VRFY would say
   * 250 for an alias whose RCPT says 550. postmaster@ always exists (RFC 5321 §4.5.1); with the
   * recipient delimiter, alice+tag@ names alice@; a domain with a catch-all takes any local part.
   */
  private assertTargetsExist(targets: readonly string[], delimiter: string): void {
    for (const t of targets) {
      const a = parseAddress(t)!;
      const domain = foldCase(a.domain);
      if (!this.isLocalDomain(domain) || foldCase(a.local) === "postmaster" || this.lookup(t) || this.lookup(`@${domain}`)) continue;
      const cut = delimiter ? a.local.indexOf(delimiter) : -1;
      if (cut > 0 && this.lookup(`${foldCase(a.local.slice(0, cut))}@${domain}`)) continue;
      throw new UsageError(`${t} is not a local user, alias or list; add it first, or pass --force`);
    }
  }

  private targets(texts: readonly string[], self: string): string[] {
    if (texts.length === 0) throw new UsageError("Give at least one target address");
    const out: string[] = [];
    for (const t of texts) {
      const a = parseAddress(t);
      if (!a) throw new UsageError(`Cannot parse address ${JSON.stringify(t)}`);
      const key = canonical(a);
      if (key === self) throw new UsageError(`${key} cannot point to itself`);
      if (out.includes(key)) throw new UsageError(`${key} is given twice`);
      out.push(key);
    }
    return out;
  }

  private assertFree(key: string): void {
    const e = this.lookup(key);
    if (e) throw new UsageError(`${key} already exists as ${article(e.kind)}`);
  }

  private column(sql: string, arg: string): string[] {
    return this.stmt(sql).pluck().all(arg) as string[];
  }

  private allNames(): { address: string; name: string | null }[] {
    return this.db
      .prepare("SELECT address, name FROM users UNION SELECT DISTINCT alias, NULL FROM aliases UNION SELECT DISTINCT list, NULL FROM lists ORDER BY 1")
      .all() as { address: string; name: string | null }[];
  }
}

interface UserRow {
  address: string;
  name: string | null;
  apop_secret: string | null;
}

function toUser(r: UserRow): User {
  return { address: r.address, name: r.name, hasApop: r.apop_secret !== null };
}

function checkPassword(pw: string): void {
  if (pw.length === 0) throw new UsageError("Password is empty");
  // A POP3 client could never send most of these, and a tab or escape in a password is a paste accident.
  if (/[\x00-\x1f\x7f]/.test(pw)) throw new UsageError("Password cannot contain control characters (line breaks, tabs, NUL, escapes)");
}

function checkName(name: string | null): string | null {
  if (name === null || name === "") return null;
  if (/[\x00-\x1f\x7f]/.test(name)) throw new UsageError("Display name cannot contain control characters");
  return name;
}

function article(kind: Entry["kind"]): string {
  return kind === "alias" ? "an alias" : `a ${kind}`;
}

function groupRows(rows: [string, string][]): [string, string[]][] {
  const m = new Map<string, string[]>();
  for (const [k, v] of rows) (m.get(k) ?? m.set(k, []).get(k)!).push(v);
  return [...m];
}
