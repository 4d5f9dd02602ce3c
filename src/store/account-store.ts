// Users, aliases and mailing lists in SQLite (better-sqlite3) under data_dir. WAL mode and a busy
// timeout make it safe for the CLI to change accounts while the server reads them; every change is
// one SQLite transaction, so nothing is half-written. Addresses are stored canonical (lowercase).
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { canonical, formatAddress, parseAddress, type Address } from "../core/address.js";
import { UsageError } from "../core/errors.js";
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

  constructor(dataDir: string, domains: readonly string[]) {
    fs.mkdirSync(dataDir, { recursive: true });
    this.db = new Database(path.join(dataDir, "petrel.db"));
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("busy_timeout = 5000");
    this.db.pragma("synchronous = FULL");
    this.db.exec(SCHEMA);
    this.domains = new Set(domains.map((d) => d.toLowerCase()));
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
    return this.domains.has(domain.toLowerCase());
  }

  // ---- lookups (used by the SMTP and POP3 servers) ----

  lookup(address: string): Entry | null {
    const key = address.toLowerCase();
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

  async checkPassword(address: string, password: string): Promise<boolean> {
    const row = this.stmt("SELECT password FROM users WHERE address = ?").get(address.toLowerCase()) as { password: string } | undefined;
    if (!row) {
      // Spend the same time as a real check, so timing does not reveal which users exist.
      await verifyPassword(password, (dummyHash ??= hashPassword("petrel-dummy-password")));
      return false;
    }
    return verifyPassword(password, row.password);
  }

  apopSecret(address: string): string | null {
    const row = this.stmt("SELECT apop_secret FROM users WHERE address = ?").get(address.toLowerCase()) as { apop_secret: string | null } | undefined;
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
    if (!SAFE_MAILBOX_LOCAL.test(a.local.toLowerCase())) throw new UsageError(`Cannot use ${formatAddress(a)} as a mailbox: use letters, digits and . _ + - = only`);
    checkPassword(password);
    const name = checkName(opts.name ?? null);
    const key = canonical(a);
    const hash = hashPassword(password);
    this.db.transaction(() => {
      this.assertFree(key);
      this.db
        .prepare("INSERT INTO users (address, local, domain, name, password, apop_secret, created) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .run(key, a.local.toLowerCase(), a.domain.toLowerCase(), name, hash, opts.apop ? password : null, Date.now());
    })();
    return this.getUser(key)!;
  }

  deleteUser(address: string): void {
    const key = canonical(this.localAddress(address));
    const r = this.stmt("DELETE FROM users WHERE address = ?").run(key);
    if (r.changes === 0) throw new UsageError(`No such user ${key}`);
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

  addAlias(alias: string, targets: readonly string[]): void {
    const key = canonical(this.localAddress(alias));
    const ts = this.targets(targets, key);
    this.db.transaction(() => {
      const existing = this.lookup(key);
      if (existing && existing.kind !== "alias") throw new UsageError(`${key} already exists as ${article(existing.kind)}`);
      const have = new Set(existing?.kind === "alias" ? existing.targets : []);
      for (const t of ts) {
        if (have.has(t)) throw new UsageError(`Alias ${key} already points to ${t}`);
        this.stmt("INSERT INTO aliases (alias, target) VALUES (?, ?)").run(key, t);
      }
    })();
  }

  deleteAlias(alias: string): void {
    const key = canonical(this.localAddress(alias));
    const r = this.stmt("DELETE FROM aliases WHERE alias = ?").run(key);
    if (r.changes === 0) throw new UsageError(`No such alias ${key}`);
  }

  addListMembers(list: string, members: readonly string[]): void {
    const key = canonical(this.localAddress(list));
    const ms = this.targets(members, key);
    this.db.transaction(() => {
      const existing = this.lookup(key);
      if (existing && existing.kind !== "list") throw new UsageError(`${key} already exists as ${article(existing.kind)}`);
      const have = new Set(existing?.kind === "list" ? existing.members : []);
      for (const m of ms) {
        if (have.has(m)) throw new UsageError(`${m} is already a member of ${key}`);
        this.stmt("INSERT INTO lists (list, member) VALUES (?, ?)").run(key, m);
      }
    })();
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
    this.db.transaction(() => {
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
    })();
  }

  // ---- helpers ----

  private localAddress(text: string): Address {
    const a = parseAddress(text);
    if (!a) throw new UsageError(`Cannot parse address ${JSON.stringify(text)}`);
    if (!this.isLocalDomain(a.domain)) throw new UsageError(`Domain ${a.domain} is not local (local domains: ${[...this.domains].join(", ")})`);
    return a;
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
  if (/[\r\n\0]/.test(pw)) throw new UsageError("Password cannot contain line breaks or NUL");
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

let dummyHash: string | undefined;
