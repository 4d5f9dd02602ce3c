// petrel dkim generate|list|check: DKIM keys for signing outgoing mail (src/dkim/). generate makes a key
// pair under [dkim] key_dir (data_dir/dkim/<domain>/<selector>.<alg>.key) and prints the DNS TXT record
// to publish on stdout; explanations and the check command go to stderr, so `> record.txt` keeps only
// the record. list prints every key with its record; check looks each record up through [dns] servers.
// A domain that is not one of ours is allowed (a sender subdomain, a key made before the domain is
// added) with a warning. Input is validated before any write.
import { Resolver } from "node:dns/promises";
import fs from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { UsageError } from "../core/errors.js";
import type { LoadedConfig } from "../config/load.js";
import { DKIM_ALGORITHMS, DkimKeyStore, dnsRecord, recordName, RSA_BITS, signingDomain, type DkimAlgorithm, type DkimKey, type KeyOwner } from "../dkim/dkim-key-store.js";
import { checkPublished } from "../dkim/published-key.js";
import { preparePrivateDir } from "../store/data-dir.js";
import { CONFIG_HELP, loadCliConfig, note, oneLineErrors, type ConfigOption } from "./context.js";

interface GenerateOptions extends ConfigOption {
  readonly selector?: string;
  readonly algorithm: string;
  readonly force?: boolean;
}

export function registerDkim(program: Command): void {
  const dkim = oneLineErrors(program.command("dkim").description("DKIM keys for signing outgoing mail"));
  dkim
    .command("generate")
    .description("make a DKIM key pair for DOMAIN and print the DNS TXT record to publish")
    .argument("<domain>", "the domain in the From: address of the mail to sign, e.g. example.com")
    .option("--selector <name>", "selector (default petrel-YYYYMM-ALGORITHM)")
    .option("--algorithm <alg>", `${DKIM_ALGORITHMS.join(" or ")} (RSA ${RSA_BITS} bits; Ed25519 per RFC 8463)`, "rsa")
    .option("--force", "replace an existing key with the same selector")
    .option("--config <file>", CONFIG_HELP)
    .action(async (domain: string, opts: GenerateOptions) => {
      if (!(DKIM_ALGORITHMS as readonly string[]).includes(opts.algorithm)) throw new UsageError(`--algorithm must be rsa or ed25519, not ${JSON.stringify(opts.algorithm)}`);
      const config = loadCliConfig(opts);
      const store = keyStore(config);
      preparePrivateDir(config.data_dir);
      const key = await store.generate(domain, {
        ...(opts.selector !== undefined ? { selector: opts.selector } : {}),
        algorithm: opts.algorithm as DkimAlgorithm,
        force: opts.force === true,
        owner: dataDirOwner(config.data_dir),
      });
      process.stdout.write(`${dnsRecord(key)}\n`);
      if (!config.domains.includes(key.domain))
        note(`warning: ${key.domain} is not in "domains" of the config; mail is signed with this key only when its From: domain is exactly ${key.domain}`);
      const kind = key.algorithm === "rsa" ? `RSA ${RSA_BITS}` : "Ed25519";
      note(`wrote ${key.file} (${kind}). ${config.dkim.sign ? `Mail from @${key.domain} is signed with it from now on.` : "Signing is off ([dkim] sign = false)."}`);
      note(`publish the TXT record above in the DNS of ${key.domain}, then check it with: petrel dkim check ${key.domain}`);
    });
  dkim
    .command("list")
    .description("list DKIM keys: domain, selector, algorithm, creation time and the DNS record")
    .option("--config <file>", CONFIG_HELP)
    .action(async (opts: ConfigOption) => {
      const config = loadCliConfig(opts);
      const { keys, problems } = await keyStore(config).list();
      process.stdout.write(formatKeyList(keys));
      for (const p of problems) note(p);
    });
  dkim
    .command("check")
    .description("look up each key's TXT record in DNS ([dns] servers) and say whether it is published correctly")
    .argument("[domain]", "only this domain's keys")
    .option("--config <file>", CONFIG_HELP)
    .action(async (domain: string | undefined, opts: ConfigOption) => {
      const config = loadCliConfig(opts);
      const wanted = domain === undefined ? null : signingDomain(domain);
      if (domain !== undefined && !wanted) throw new UsageError(`not a domain name: ${JSON.stringify(domain)}`);
      const { keys, problems } = await keyStore(config).list();
      for (const p of problems) note(p);
      const chosen = keys.filter((k) => wanted === null || k.domain === wanted);
      if (chosen.length === 0) throw new UsageError(wanted ? `no DKIM key for ${wanted} (petrel dkim generate ${wanted} makes one)` : "no DKIM keys (petrel dkim generate DOMAIN makes one)");
      const resolver = new Resolver({ timeout: 2500, tries: 2 });
      if (config.dns.servers.length > 0) resolver.setServers([...config.dns.servers]);
      let bad = 0;
      for (const key of chosen) {
        const state = await checkPublished(key, (name) => resolver.resolveTxt(name));
        if (state.kind !== "ok") bad++;
        const label = { ok: "ok", missing: "MISSING", wrong: "WRONG", "dns-error": "DNS-ERROR" }[state.kind];
        process.stdout.write(`${label.padEnd(9)} ${recordName(key)} (${key.algorithm})${state.kind === "ok" ? "" : `: ${state.detail}`}\n`);
      }
      if (bad > 0) process.exitCode = 1;
    });
}

/** The table of `dkim list`: one line per key, its record indented below it. */
export function formatKeyList(keys: readonly DkimKey[]): string {
  if (keys.length === 0) return "No DKIM keys (petrel dkim generate DOMAIN makes one)\n";
  const rows = keys.map((k) => [k.domain, k.selector, k.algorithm, k.created.toISOString().replace(/\.\d{3}Z$/, "Z")]);
  const head = ["DOMAIN", "SELECTOR", "ALGORITHM", "CREATED"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  let text = `${line(head)}\n`;
  keys.forEach((k, i) => (text += `${line(rows[i]!)}\n    ${dnsRecord(k)}\n`));
  return text;
}

function keyStore(config: LoadedConfig): DkimKeyStore {
  // Without a config file data_dir is ./data of wherever this runs: keys there would never be used.
  if (config.origin === "defaults" && !fs.existsSync(config.data_dir))
    throw new UsageError(`data_dir ${config.data_dir} does not exist; pass --config FILE or set PETREL_CONFIG (petrel serve creates it on first start)`);
  return new DkimKeyStore(path.resolve(config.data_dir, config.dkim.key_dir));
}

/** Root making keys in a data_dir that belongs to the server's user gives them to that user (the server must read them). */
function dataDirOwner(dataDir: string): KeyOwner | null {
  if (process.getuid?.() !== 0) return null;
  try {
    const st = fs.statSync(dataDir);
    return st.uid === 0 ? null : { uid: st.uid, gid: st.gid };
  } catch {
    return null;
  }
}
