// Independent DKIM verifiers for tests of Petrel's signatures: Debian's python3-dkim (dkimpy 1.1,
// RSA and Ed25519) run as a child process, and mailauth's dkimVerify. Neither asks real DNS: both get
// the TXT records exactly as `petrel dkim generate` prints them (zone-file lines), the quoted strings
// joined as a resolver joins them (RFC 7208 §3.3 style concatenation, which DKIM verifiers apply too).
import { spawn } from "node:child_process";
import { dkimVerify } from "mailauth";

/** Debian's interpreter, which has the python3-dkim and python3-nacl packages (a pyenv one may not). */
export const DEBIAN_PYTHON = "/usr/bin/python3";

/** name (without the final dot, lowercase) → TXT value, from lines like `s._domainkey.d. IN TXT "a" "b"`. */
export function txtRecords(lines: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of lines) {
    const m = /^(\S+?)\.?\s+IN\s+TXT\s+((?:"[^"]*"\s*)+)$/.exec(line.trim());
    if (!m) throw new Error(`not a TXT record line: ${line}`);
    const strings = [...m[2]!.matchAll(/"([^"]*)"/g)].map((s) => s[1]!);
    if (strings.some((s) => Buffer.byteLength(s) > 255)) throw new Error(`a TXT string longer than 255 octets: ${line}`);
    out.set(m[1]!.toLowerCase(), strings.join(""));
  }
  return out;
}

const PY_VERIFY = `
import sys, json, base64, dkim
records = json.loads(sys.argv[1])
def dnsfunc(name, timeout=5):
    v = records.get(name.decode().rstrip('.').lower())
    return v.encode() if v is not None else None
def one(d, i):
    try:
        return bool(d.verify(idx=i, dnsfunc=dnsfunc))
    except dkim.DKIMException:
        return False
out = []
for m in json.load(sys.stdin):
    d = dkim.DKIM(base64.b64decode(m))
    n = len([h for h in d.headers if h[0].lower() == b'dkim-signature'])
    out.append([one(d, i) for i in range(n)])
print(json.dumps(out))
`;

/** python3-dkim's verdict for each DKIM-Signature of the message, top down. */
export async function pythonDkimVerify(message: Buffer, records: ReadonlyMap<string, string>): Promise<boolean[]> {
  return (await pythonDkimVerifyAll([message], records))[0]!;
}

/** The same for several messages in one run of python3 (starting it costs most of the time). */
export function pythonDkimVerifyAll(messages: readonly Buffer[], records: ReadonlyMap<string, string>): Promise<boolean[][]> {
  return new Promise((resolve, reject) => {
    const child = spawn(DEBIAN_PYTHON, ["-c", PY_VERIFY, JSON.stringify(Object.fromEntries(records))], { stdio: ["pipe", "pipe", "pipe"], timeout: 60_000 });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.on("error", reject);
    child.on("close", (status) => (status === 0 ? resolve(JSON.parse(out) as boolean[][]) : reject(new Error(`python3-dkim exited ${status}: ${err}`))));
    child.stdin.on("error", () => undefined);
    child.stdin.end(JSON.stringify(messages.map((m) => m.toString("base64"))));
  });
}

/** mailauth's result for each DKIM-Signature ("pass", "fail", "neutral"...), with its signing domain and algorithm. */
export async function mailauthDkimVerify(message: Buffer, records: ReadonlyMap<string, string>): Promise<{ result: string; domain: string; algo: string }[]> {
  const resolver = async (name: string, type: string): Promise<string[][]> => {
    const v = type === "TXT" ? records.get(name.replace(/\.$/, "").toLowerCase()) : undefined;
    if (v === undefined) throw Object.assign(new Error(`no ${type} for ${name}`), { code: "ENOTFOUND" });
    return [[v]];
  };
  const r = await dkimVerify(message, { resolver });
  return r.results.map((s) => ({ result: s.status.result, domain: s.signingDomain ?? "", algo: s.algo ?? "" }));
}
