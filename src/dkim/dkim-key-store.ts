// DKIM private keys on disk and the DNS records that publish them (RFC 6376 §3.6.1; Ed25519: RFC 8463).
// One PEM (PKCS #8) file per key: <key_dir>/<domain>/<selector>.<rsa|ed25519>.key, folders 0700, files
// 0600, written under a temporary name, fsync'd and renamed, so a key is either whole or absent.
// Trusts the files it reads only after parsing them: a file whose key does not match its name is skipped.
import crypto from "node:crypto";
import fsSync from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { domainToASCII } from "node:url";
import { promisify } from "node:util";
import { foldCase, isValidDomain } from "../core/address.js";
import { UsageError } from "../core/errors.js";
import { fsyncDir, writeFileSynced } from "../mailbox/maildir.js";

export const DKIM_ALGORITHMS = ["rsa", "ed25519"] as const;
export type DkimAlgorithm = (typeof DKIM_ALGORITHMS)[number];

/** RSA keys we make: 2048 bits (RFC 8301 §3.2 wants at least 1024; 2048 fits a TXT record). */
export const RSA_BITS = 2048;

export interface DkimKey {
  /** d=: the domain, lowercase A-label. */
  readonly domain: string;
  /** s=: the selector, lowercase. */
  readonly selector: string;
  readonly algorithm: DkimAlgorithm;
  readonly privateKey: crypto.KeyObject;
  readonly file: string;
  /** When the key file was written (its modification time). */
  readonly created: Date;
}

/** A selector (RFC 6376 §3.1): dot-separated labels of letters, digits and inner hyphens, at most 63 each. */
const SELECTOR = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const STAMP_SLACK_MS = 2000;
const KEY_FILE = /^(.+)\.(rsa|ed25519)\.key$/;

/** The domain as a key folder and d= value (lowercase A-label), or null when it is not a domain name. */
export function signingDomain(domain: string): string | null {
  if (!isValidDomain(domain) || domain.startsWith("[")) return null;
  const ascii = domainToASCII(foldCase(domain));
  return ascii && isValidDomain(ascii) && ascii.length <= 253 ? ascii : null;
}

/** The selector lowercased, or null when it cannot be one. */
export function validSelector(selector: string): string | null {
  const s = selector.toLowerCase();
  return SELECTOR.test(s) && s.length <= 253 ? s : null;
}

/** The default selector: petrel-YYYYMM-<algorithm>, one name per algorithm, since each needs its own TXT record. */
export function defaultSelector(algorithm: DkimAlgorithm, now: Date): string {
  return `petrel-${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, "0")}-${algorithm}`;
}

/** The public key as the p= value: SubjectPublicKeyInfo for RSA, the raw 32 octets for Ed25519 (RFC 8463 §4.2). */
export function publicKeyValue(key: crypto.KeyObject): string {
  const pub = crypto.createPublicKey(key);
  if (pub.asymmetricKeyType === "ed25519") return Buffer.from(pub.export({ format: "jwk" }).x!, "base64url").toString("base64");
  return pub.export({ type: "spki", format: "der" }).toString("base64");
}

/** The TXT record's value, "v=DKIM1; k=rsa; p=...". */
export function recordValue(key: Pick<DkimKey, "algorithm" | "privateKey">): string {
  return `v=DKIM1; k=${key.algorithm}; p=${publicKeyValue(key.privateKey)}`;
}

/** The record in zone-file form on one line, the value cut into quoted strings of at most 255 octets (RFC 1035 §3.3.14). */
export function dnsRecord(key: Pick<DkimKey, "domain" | "selector" | "algorithm" | "privateKey">): string {
  const value = recordValue(key);
  const strings: string[] = [];
  for (let i = 0; i < value.length; i += 255) strings.push(`"${value.slice(i, i + 255)}"`);
  return `${recordName(key)}. IN TXT ${strings.join(" ")}`;
}

export function recordName(key: Pick<DkimKey, "domain" | "selector">): string {
  return `${key.selector}._domainkey.${key.domain}`;
}

/** Owner for created folders and files when root works in a data_dir that belongs to another user. */
export interface KeyOwner {
  readonly uid: number;
  readonly gid: number;
}

/**
 * The key folder: makes keys, lists them, and gives the signer a domain's keys, re-read whenever the
 * domain's folder changes (a key generated or removed while the server runs is used or dropped for the
 * next message, without a restart).
 */
export class DkimKeyStore {
  private readonly cache = new Map<string, { stamp: string; loadedAt: number; keys: readonly DkimKey[]; problems: readonly string[] }>();

  constructor(readonly dir: string) {}

  /** Makes a key pair and writes the private key; refuses to replace an existing key unless `force`. */
  async generate(domainText: string, opts: { selector?: string; algorithm: DkimAlgorithm; force?: boolean; now?: Date; owner?: KeyOwner | null }): Promise<DkimKey> {
    const domain = signingDomain(domainText);
    if (!domain) throw new UsageError(`not a domain name: ${JSON.stringify(domainText)}`);
    const selector = validSelector(opts.selector ?? defaultSelector(opts.algorithm, opts.now ?? new Date()));
    if (!selector) throw new UsageError(`not a selector: ${JSON.stringify(opts.selector)} (letters, digits, hyphens, dots)`);
    const domainDir = path.join(this.dir, domain);
    const file = path.join(domainDir, `${selector}.${opts.algorithm}.key`);
    for (const other of DKIM_ALGORITHMS) {
      if (other === opts.algorithm || !fsSync.existsSync(path.join(domainDir, `${selector}.${other}.key`))) continue;
      throw new UsageError(`selector ${selector} of ${domain} already has an ${other} key: each key needs its own selector (one TXT record per name); pass --selector`);
    }
    if (!opts.force && fsSync.existsSync(file))
      throw new UsageError(`a key for selector ${selector} of ${domain} exists already (${file}); pass --selector NAME for a new one, or --force to replace it`);
    const { privateKey } =
      opts.algorithm === "rsa"
        ? await promisify(crypto.generateKeyPair)("rsa", { modulusLength: RSA_BITS, publicExponent: 0x10001 })
        : await promisify(crypto.generateKeyPair)("ed25519", {});
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    for (const dir of [this.dir, domainDir]) await makePrivateDir(dir, opts.owner ?? null);
    const tmp = path.join(domainDir, `.${selector}.${opts.algorithm}.${process.pid}.${crypto.randomBytes(4).toString("hex")}.tmp`);
    await writeFileSynced(tmp, pem, "wx");
    try {
      if (opts.owner) await fs.chown(tmp, opts.owner.uid, opts.owner.gid);
      // Without --force, link() refuses a key that appeared meanwhile (another generate), where rename() would replace it.
      if (opts.force) await fs.rename(tmp, file);
      else await fs.link(tmp, file);
    } catch (err) {
      await fs.unlink(tmp).catch(() => undefined);
      if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new UsageError(`a key for selector ${selector} of ${domain} exists already (${file}); pass --selector NAME for a new one, or --force to replace it`);
      throw err;
    }
    if (!opts.force) await fs.unlink(tmp);
    await fsyncDir(domainDir);
    const st = await fs.stat(file);
    return { domain, selector, algorithm: opts.algorithm, privateKey, file, created: st.mtime };
  }

  /** Every key, by domain then selector, and a line for each file that could not be used. */
  async list(): Promise<{ keys: DkimKey[]; problems: string[] }> {
    const keys: DkimKey[] = [];
    const problems: string[] = [];
    for (const domain of (await readdirOrEmpty(this.dir)).sort()) {
      if (!signingDomain(domain) || signingDomain(domain) !== domain) continue;
      const found = await this.load(domain);
      keys.push(...found.keys);
      problems.push(...found.problems);
    }
    return { keys, problems };
  }

  /** The keys of one domain (lowercase A-label), RSA first; [] when it has none. Cached until its folder changes. */
  async keysFor(domain: string): Promise<{ keys: readonly DkimKey[]; problems: readonly string[] }> {
    const dir = path.join(this.dir, domain);
    let stamp: string;
    let changed: number;
    try {
      const st = await fs.stat(dir);
      stamp = `${st.ino}:${st.mtimeMs}:${st.ctimeMs}`;
      changed = Math.max(st.mtimeMs, st.ctimeMs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") {
        this.cache.delete(domain);
        return { keys: [], problems: [] };
      }
      throw err;
    }
    const cached = this.cache.get(domain);
    // A folder changed within STAMP_SLACK_MS of our read could change again with the same time stamp
    // (coarse file system clocks): such a cache entry is not trusted.
    if (cached?.stamp === stamp && changed + STAMP_SLACK_MS < cached.loadedAt) return cached;
    const loadedAt = Date.now();
    const found = await this.load(domain);
    const entry = { stamp, loadedAt, ...found };
    this.cache.set(domain, entry);
    return entry;
  }

  private async load(domain: string): Promise<{ keys: DkimKey[]; problems: string[] }> {
    const keys: DkimKey[] = [];
    const problems: string[] = [];
    const dir = path.join(this.dir, domain);
    for (const name of (await readdirOrEmpty(dir)).sort()) {
      const m = KEY_FILE.exec(name);
      if (!m || name.startsWith(".")) continue;
      const file = path.join(dir, name);
      const selector = validSelector(m[1]!);
      const algorithm = m[2] as DkimAlgorithm;
      if (!selector || selector !== m[1]) {
        problems.push(`${file}: not a valid selector name, skipped`);
        continue;
      }
      try {
        const [pem, st] = await Promise.all([fs.readFile(file, "utf8"), fs.stat(file)]);
        const privateKey = crypto.createPrivateKey(pem);
        if (privateKey.asymmetricKeyType !== algorithm) throw new Error(`holds an ${privateKey.asymmetricKeyType ?? "unknown"} key, not ${algorithm}`);
        if (algorithm === "rsa" && (privateKey.asymmetricKeyDetails?.modulusLength ?? 0) < 1024) throw new Error("RSA key shorter than 1024 bits (RFC 8301)");
        keys.push({ domain, selector, algorithm, privateKey, file, created: st.mtime });
      } catch (err) {
        problems.push(`${file}: ${(err as Error).message.split("\n")[0]}, skipped`);
      }
    }
    keys.sort((a, b) => DKIM_ALGORITHMS.indexOf(a.algorithm) - DKIM_ALGORITHMS.indexOf(b.algorithm) || a.selector.localeCompare(b.selector));
    return { keys, problems };
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return [];
    throw err;
  }
}

async function makePrivateDir(dir: string, owner: KeyOwner | null): Promise<void> {
  try {
    await fs.mkdir(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return;
  }
  if (owner) await fs.chown(dir, owner.uid, owner.gid);
  await fsyncDir(path.dirname(dir));
}
