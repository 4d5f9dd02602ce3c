// The certificate every TLS port serves (issue 8): the [tls] cert/key PEM files when set (a chain in cert is
// served whole), else a self-signed certificate for `hostname` generated once into <data_dir>/tls/ and reused.
// Trusts nothing in the files: each certificate is parsed and the key checked against the first one before it
// is served; SIGHUP re-reads them and a bad file leaves the running certificate in place. TLS 1.2 minimum.
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import tls from "node:tls";
import { generate } from "selfsigned";
import { UsageError } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import { fsyncDir, writeFileSynced } from "../mailbox/maildir.js";
import { narrowPrivateFiles, preparePrivateDir } from "../store/data-dir.js";

/** What listeners and sessions use: asked once per handshake, so a reload reaches the next client. */
export interface TlsContextSource {
  /** The secure context for the next handshake (the newest good certificate). */
  context(): tls.SecureContext;
}

export interface CertificateSummary {
  source: "configured" | "generated";
  subject: string;
  altNames: string[];
  notAfter: string;
  fingerprint256: string;
  certFile: string;
  keyFile: string;
}

/**
 * Options every Petrel TLS server socket uses. They are built into each SecureContext (context()), so a
 * `new tls.TLSSocket(socket, { isServer: true, secureContext })` gets them without repeating them.
 * Ciphers: Node's default list (modern: TLS 1.3 suites, then ECDHE/DHE AEAD), in the server's order.
 */
export const SERVER_TLS_OPTIONS = {
  minVersion: "TLSv1.2",
  honorCipherOrder: true,
  // TLS 1.2 renegotiation refused outright (Node would otherwise allow 3 per 10 minutes); TLS 1.3 has none.
  secureOptions: crypto.constants.SSL_OP_NO_RENEGOTIATION,
} as const satisfies tls.SecureContextOptions;

/**
 * 825 days: Apple's limit for "all TLS server certificates" since iOS 13 / macOS 10.15 (HT210176, with RSA
 * >= 2048, SHA-2, the name in the SAN and the serverAuth EKU, all met here), so a user who trusts it on a
 * Mac or iPhone is not refused. Renewed at a start less than RENEW_BEFORE_DAYS before it ends.
 */
const GENERATED_VALIDITY_DAYS = 825;
const RENEW_BEFORE_DAYS = 30;
const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 24 * 60 * 60 * 1000;
const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
/** PKCS#8, "RSA"/"EC" (PKCS#1, SEC1) or "ENCRYPTED"; found also after EC PARAMETERS or in a cert+key file. */
const KEY_BLOCK = /-----BEGIN ((?:[A-Z]+ )?PRIVATE KEY)-----[\s\S]*?-----END \1-----/;

/** How the two files are named in messages: the config keys, or what Petrel made itself. */
interface FileLabels {
  readonly cert: string;
  readonly key: string;
}
const CONFIGURED: FileLabels = { cert: "tls.cert", key: "tls.key" };
const GENERATED: FileLabels = { cert: "generated certificate", key: "generated key" };

/** A certificate and key that passed every check, with the context built from them. */
interface LoadedPair {
  readonly context: tls.SecureContext;
  readonly leaf: crypto.X509Certificate;
  /** Every certificate of the cert file, the leaf first. */
  readonly chain: readonly crypto.X509Certificate[];
  readonly certPem: string;
  readonly keyPem: string;
}

export class ServerCertificates implements TlsContextSource {
  private current: LoadedPair;

  private constructor(
    private readonly source: CertificateSummary["source"],
    private readonly files: { readonly cert: string; readonly key: string },
    private readonly hostname: string,
    private readonly log: Logger,
    loaded: LoadedPair,
  ) {
    this.current = loaded;
  }

  /**
   * Loads [tls] cert/key when set, else generates (first start) or reuses a self-signed cert for hostname
   * under dataDir. Throws UsageError (core/errors.ts) with a one-line message when the configured files are bad.
   */
  static async open(opts: { cert?: string; key?: string; hostname: string; dataDir: string }, log: Logger): Promise<ServerCertificates> {
    if (opts.cert !== undefined && opts.key !== undefined) {
      const files = { cert: opts.cert, key: opts.key };
      const certs = new ServerCertificates("configured", files, opts.hostname, log, loadPair(files, CONFIGURED));
      certs.logServed();
      return certs;
    }
    if (opts.cert !== undefined || opts.key !== undefined) throw new UsageError("tls.cert and tls.key go together: give both or neither");
    const dir = path.join(opts.dataDir, "tls");
    for (const change of preparePrivateDir(dir)) log.warn({ change }, "made data_dir private");
    const files = { cert: path.join(dir, "selfsigned.crt"), key: path.join(dir, "selfsigned.key") };
    const loaded = await reuseOrGenerate(files, opts.hostname, log);
    const certs = new ServerCertificates("generated", files, opts.hostname, log, loaded);
    certs.logServed();
    log.warn(
      { cert_file: files.cert },
      "TLS uses a self-signed certificate: mail clients will not verify it; set [tls] cert and key (for example a Let's Encrypt certificate) for production",
    );
    return certs;
  }

  context(): tls.SecureContext {
    return this.current.context;
  }

  get summary(): CertificateSummary {
    const { leaf } = this.current;
    return {
      source: this.source,
      subject: subjectOf(leaf),
      altNames: altNamesOf(leaf),
      notAfter: leaf.validToDate.toISOString(),
      fingerprint256: leaf.fingerprint256,
      certFile: this.files.cert,
      keyFile: this.files.key,
    };
  }

  /**
   * SIGHUP: re-reads the files. A bad file (unreadable, not PEM, key not matching cert) is logged (error) and the
   * old context kept; returns whether it changed. Never throws.
   */
  reload(): boolean {
    try {
      const next = loadPair(this.files, this.source === "configured" ? CONFIGURED : GENERATED);
      if (next.certPem === this.current.certPem && next.keyPem === this.current.keyPem) {
        this.log.info({ cert_file: this.files.cert, fingerprint256: next.leaf.fingerprint256 }, "TLS certificate unchanged");
        return false;
      }
      this.current = next;
      this.logServed();
      return true;
    } catch (err) {
      this.log.error(
        { cert_file: this.files.cert, key_file: this.files.key, error: err instanceof Error ? err.message : String(err) },
        "TLS certificate not reloaded: the running certificate stays",
      );
      return false;
    }
  }

  /** One info line naming what is served, and a warning for each reason a client may refuse it. */
  private logServed(): void {
    const s = this.summary;
    this.log.info(
      {
        source: s.source,
        subject: s.subject,
        alt_names: s.altNames,
        not_after: s.notAfter,
        fingerprint256: s.fingerprint256,
        chain_length: this.current.chain.length,
        cert_file: s.certFile,
      },
      "TLS certificate served",
    );
    for (const problem of problemsOf(this.current.chain, this.hostname, Date.now()))
      this.log.warn({ cert_file: s.certFile, subject: s.subject, alt_names: s.altNames, not_after: s.notAfter }, problem);
  }
}

/** Reads and checks a pair; every failure is a one-line UsageError naming the file at fault. */
function loadPair(files: { readonly cert: string; readonly key: string }, labels: FileLabels): LoadedPair {
  const certPem = readText(labels.cert, files.cert);
  const keyPem = readText(labels.key, files.key);
  const blocks = certPem.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) throw new UsageError(`${labels.cert} ${files.cert}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)`);
  const chain = blocks.map((block, i) => {
    try {
      return new crypto.X509Certificate(block);
    } catch (err) {
      throw new UsageError(`${labels.cert} ${files.cert}: certificate ${i + 1} cannot be parsed (${reasonOf(err)})`);
    }
  });
  const keyBlock = KEY_BLOCK.exec(keyPem)?.[0];
  if (keyBlock === undefined) throw new UsageError(`${labels.key} ${files.key}: no PEM private key in it (expected -----BEGIN PRIVATE KEY-----)`);
  if (keyBlock.startsWith("-----BEGIN ENCRYPTED")) throw new UsageError(`${labels.key} ${files.key}: the key is encrypted; Petrel needs it without a passphrase`);
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(keyBlock);
  } catch (err) {
    throw new UsageError(`${labels.key} ${files.key}: the private key cannot be parsed (${reasonOf(err)})`);
  }
  const leaf = chain[0]!;
  if (!leaf.checkPrivateKey(key))
    throw new UsageError(`${labels.key} ${files.key} does not match the certificate in ${labels.cert} ${files.cert} (the server's own certificate must come first in that file)`);
  let context: tls.SecureContext;
  try {
    // Every certificate of the file as cert: OpenSSL serves the first with the rest as its chain. The blocks
    // are re-joined because OpenSSL refuses files cat'ed together without a newline between them.
    context = tls.createSecureContext({ ...SERVER_TLS_OPTIONS, cert: blocks.join("\n") + "\n", key: keyBlock });
  } catch (err) {
    throw new UsageError(`${labels.cert} ${files.cert} and ${labels.key} ${files.key}: refused by OpenSSL (${reasonOf(err)})`);
  }
  return { context, leaf, chain, certPem, keyPem };
}

function readText(label: string, file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`${label} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? reasonOf(err)})`);
  }
}

/** Why a client may refuse the certificate, as log messages; empty when nothing is wrong. */
function problemsOf(chain: readonly crypto.X509Certificate[], hostname: string, now: number): string[] {
  const problems: string[] = [];
  const leaf = chain[0]!;
  // The classic Let's Encrypt mistake: cert.pem instead of fullchain.pem. Clients lack the intermediate.
  if (chain.length === 1 && leaf.issuer !== leaf.subject && !leaf.checkIssued(leaf))
    problems.push("the TLS certificate file holds no chain (the issuer's certificate is missing; with Let's Encrypt use fullchain.pem): many clients will refuse it");
  for (let i = 1; i < chain.length; i++)
    if (!chain[i - 1]!.checkIssued(chain[i]!))
      problems.push(`certificate ${i + 1} in the TLS certificate file did not issue certificate ${i}: clients may not build the chain (order: server, intermediates, root)`);
  if (leaf.checkHost(hostname) === undefined) problems.push(`the TLS certificate does not name hostname ${hostname}: clients that check it will refuse it`);
  const left = leaf.validToDate.getTime() - now;
  if (left <= 0) problems.push("the TLS certificate has expired: clients that check it will refuse it");
  else if (left < EXPIRY_WARNING_DAYS * DAY_MS) problems.push(`the TLS certificate expires in ${Math.ceil(left / DAY_MS)} day(s)`);
  if (leaf.validFromDate.getTime() > now) problems.push("the TLS certificate is not valid yet (check the clock)");
  return problems;
}

/** The generated pair when it still fits hostname and has time left, else a new one; says which in the log. */
async function reuseOrGenerate(files: { readonly cert: string; readonly key: string }, hostname: string, log: Logger): Promise<LoadedPair> {
  if (!fs.existsSync(files.cert) && !fs.existsSync(files.key)) {
    log.info({ hostname, cert_file: files.cert }, "generating a self-signed TLS certificate (first start)");
    return generateSelfSigned(files, hostname);
  }
  let why: string;
  try {
    const pair = loadPair(files, GENERATED);
    const left = pair.leaf.validToDate.getTime() - Date.now();
    if (pair.leaf.checkHost(hostname) === undefined) why = `it was made for ${altNamesOf(pair.leaf).join(", ") || subjectOf(pair.leaf)}, hostname is now ${hostname}`;
    else if (left < RENEW_BEFORE_DAYS * DAY_MS) why = `it ends on ${pair.leaf.validToDate.toISOString()}`;
    else {
      for (const change of narrowPrivateFiles([files.cert, files.key])) log.warn({ change }, "made data_dir private");
      const made = fs.statSync(files.cert).mtime;
      log.info(
        { generated_at: made.toISOString(), not_after: pair.leaf.validToDate.toISOString(), cert_file: files.cert },
        `using the self-signed certificate generated on ${made.toISOString().slice(0, 10)}`,
      );
      return pair;
    }
  } catch (err) {
    why = reasonOf(err);
  }
  log.warn({ hostname, reason: why, cert_file: files.cert }, "generating a new self-signed TLS certificate");
  return generateSelfSigned(files, hostname);
}

/** RSA 2048 / SHA-256 (every client accepts it), SAN = hostname, written 0600 by temp + fsync + rename. */
async function generateSelfSigned(files: { readonly cert: string; readonly key: string }, hostname: string): Promise<LoadedPair> {
  // An hour back so a client whose clock runs a little slow does not see a certificate from the future.
  const notBeforeDate = new Date(Date.now() - 60 * 60 * 1000);
  const notAfterDate = new Date(notBeforeDate.getTime() + GENERATED_VALIDITY_DAYS * DAY_MS);
  const name = net.isIP(hostname) === 0 ? { type: 2 as const, value: hostname } : { type: 7 as const, ip: hostname };
  const pems = await generate([{ name: "commonName", value: hostname }], {
    keyType: "rsa",
    keySize: 2048,
    algorithm: "sha256",
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: "basicConstraints", cA: false, critical: true },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: [name] },
    ],
  });
  // Key first: a crash between the renames leaves a key that does not match the old certificate, which
  // the next start finds and replaces.
  await replaceFileSynced(files.key, pems.private);
  await replaceFileSynced(files.cert, pems.cert);
  await fsyncDir(path.dirname(files.cert));
  return loadPair(files, GENERATED);
}

async function replaceFileSynced(file: string, content: string): Promise<void> {
  const tmp = `${file}.tmp`;
  fs.rmSync(tmp, { force: true }); // a leftover would keep its old mode under "w"
  await writeFileSynced(tmp, content);
  fs.renameSync(tmp, file);
}

function subjectOf(cert: crypto.X509Certificate): string {
  return cert.subject.split("\n").join(", ");
}

function altNamesOf(cert: crypto.X509Certificate): string[] {
  return cert.subjectAltName === undefined ? [] : cert.subjectAltName.split(", ");
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message.split("\n")[0]! : String(err);
}
