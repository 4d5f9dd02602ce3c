// Makes a throwaway self-signed certificate for end-to-end TLS tests with Debian's openssl (an
// independent tool, so tests do not trust Petrel's own generator), and the TOML that configures it.
import { execFileSync } from "node:child_process";
import path from "node:path";

export interface TestCert {
  readonly cert: string;
  readonly key: string;
  /** `[tls]` section pointing at the files. */
  readonly toml: string;
}

/** A 2048-bit RSA certificate for hostname (CN and subjectAltName), valid for a day, in dir. */
export function makeTestCert(dir: string, hostname = "mx.petrel.test", name = "server"): TestCert {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", `/CN=${hostname}`, "-addext", `subjectAltName=DNS:${hostname}`],
    { stdio: "ignore" },
  );
  return { cert, key, toml: `[tls]\ncert = ${JSON.stringify(cert)}\nkey = ${JSON.stringify(key)}\n` };
}
