// The "auth" check end to end in process: SPF, DKIM, DMARC and ARC answered by the loopback DNS server.
// DKIM signatures and ARC sets come from an independent signer (Debian python3-dkim: dkim.sign and
// dkim.arc_sign, which needs python3-authres; keys made by openssl), ARC sets also from mailauth's sealMessage.
// Asserts the exact header fragments and the verdict for each case.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { sealMessage } from "mailauth";
import { resinfoMethods } from "../testing/auth-results-reader.js";
import { startDnsServer, type DnsServer, type Zone } from "../testing/dns-server.js";
import { MAX_HEADER_SECTION, MAX_SIGNATURES, createAuthCheck, type AuthCheckOptions } from "./auth-check.js";
import type { AuthPolicy } from "./auth-policy.js";
import type { CheckContext, CheckResult } from "./message-check.js";

const HOST = "mx.petrel.test";
const CLIENT = "192.0.2.10";
let dns: DnsServer;
let dir: string;
let rsaKey: string; // PEM file
let rsaPem: string;
let edKey: string; // dkimpy's ed25519 form: base64 of the 32-byte seed
let otherKey: string;

const DEFAULT_POLICY: AuthPolicy & { checks: boolean } = { checks: true, spf_fail: "tag", dmarc_reject: "reject", dmarc_quarantine: "junk", dns_temperror: "tag" };

function opensslKey(name: string, algorithm: "RSA" | "ed25519"): { file: string; publicB64: string } {
  const file = path.join(dir, `${name}.pem`);
  execFileSync("openssl", ["genpkey", "-algorithm", algorithm, ...(algorithm === "RSA" ? ["-pkeyopt", "rsa_keygen_bits:2048"] : []), "-out", file], { stdio: "ignore" });
  const spki = crypto.createPublicKey(fs.readFileSync(file)).export({ type: "spki", format: "der" });
  // RFC 8463 §4.2: an ed25519 key record holds the raw 32-byte public key, not the SPKI structure.
  return { file, publicB64: (algorithm === "RSA" ? spki : spki.subarray(spki.length - 32)).toString("base64") };
}

interface SignJob {
  /** The message, or the index of an earlier job whose signed result is signed again. */
  readonly message: string | number;
  readonly selector: string;
  readonly domain: string;
  readonly keyFile: () => string;
  readonly algorithm?: "rsa-sha256" | "ed25519-sha256";
  /**
   * An ARC set (RFC 8617 §5.1) by dkim.arc_sign instead of a DKIM-Signature: the sealer's authserv-id.
   * dkimpy takes the sealer's results (the ARC-Authentication-Results) and cv= from its Authentication-Results
   * fields: none on them gives i=1 cv=none, or a later instance's "arc=pass" / "arc=fail".
   */
  readonly arcSrvId?: string;
  /** Header fields put on top of the message before signing: a hop's own Authentication-Results. */
  readonly prepend?: string;
  /** Text added at the end of the body before signing, as a mailing list adds its footer. */
  readonly footer?: string;
}

/**
 * Signs or seals with python3-dkim (the library behind Debian's dkimsign and arcsign), relaxed/relaxed, all jobs in one
 * python process: a spawn per message cost ~0.4 s on a loaded machine. /usr/bin/python3 is the
 * interpreter dkimsign runs with (another python3 on PATH may lack the dkim module).
 */
function dkimsignAll(jobs: readonly SignJob[]): string[] {
  const script = [
    "import sys, json, dkim",
    "out = []",
    "for j in json.load(sys.stdin):",
    "    msg = (j['prepend'] + (out[j['message']] if isinstance(j['message'], int) else j['message']) + j['footer']).encode()",
    "    key = open(j['key'], 'rb').read()",
    "    if j['srv_id']:",
    "        sig = b''.join(dkim.arc_sign(msg, j['selector'].encode(), j['domain'].encode(), key, j['srv_id'].encode(), signature_algorithm=j['algorithm'].encode()))",
    "        if not sig: sys.exit('arc_sign sealed nothing: no Authentication-Results of ' + j['srv_id'])",
    "    else:",
    "        sig = dkim.sign(msg, j['selector'].encode(), j['domain'].encode(), key, canonicalize=(b'relaxed', b'relaxed'), signature_algorithm=j['algorithm'].encode())",
    "    out.append((sig + msg).decode())",
    "print(json.dumps(out))",
  ].join("\n");
  const input = JSON.stringify(jobs.map((j) => ({ message: j.message, selector: j.selector, domain: j.domain, key: j.keyFile(), algorithm: j.algorithm ?? "rsa-sha256", srv_id: j.arcSrvId ?? "", prepend: j.prepend ?? "", footer: j.footer ?? "" })));
  return JSON.parse(execFileSync("/usr/bin/python3", ["-c", script], { input }).toString()) as string[];
}

function message(from: string, body = "Hello there.\r\n", extra = ""): string {
  return `From: Sender <${from}>\r\nTo: bob@petrel.test\r\nSubject: test\r\nDate: Mon, 30 Nov 2026 12:00:00 +0000\r\nMessage-ID: <m1@x>\r\n${extra}\r\n${body}`;
}

async function runCheck(msg: string, ctx: Partial<CheckContext> = {}, policy: Partial<AuthPolicy> = {}, extra: Partial<AuthCheckOptions> = {}, piece = 700): Promise<CheckResult> {
  const check = createAuthCheck({
    hostname: HOST,
    dnsServers: [`127.0.0.1:${dns.port}`],
    policy: { ...DEFAULT_POLICY, ...policy },
    dnsTimeoutMs: 250,
    dnsTries: 1,
    deadlineMs: 4000,
    ...extra,
  });
  const run = check.start({ id: "Q1", peerAddress: CLIENT, helo: "mx.pass.test", ptrName: null, receivedFrom: "from mx.pass.test (unknown [192.0.2.1])", sender: "alice@pass.test", recipients: ["bob@petrel.test"], authenticated: false, tls: false, ...ctx });
  assert.ok(run);
  const bytes = Buffer.from(msg);
  for (let at = 0; at < bytes.length; at += piece) run.write(bytes.subarray(at, at + piece));
  return run.finish({ size: bytes.length, open: () => Readable.from([bytes]) });
}

/** The value of the header field (first one with that name), unfolded (RFC 5322 §2.2.3: CRLF removed). */
function header(r: CheckResult, name: string): string {
  const f = r.headers.find((h) => h.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  assert.ok(f, `no ${name} in ${r.headers.join("")}`);
  return f.replace(/\r\n(?=[ \t])/g, "").replace(/\r\n$/, "").slice(name.length + 2);
}

function zone(): Zone {
  const rsa = `v=DKIM1; k=rsa; p=${rsaPem}`;
  return {
    // SPF
    "pass.test": { TXT: [`v=spf1 ip4:${CLIENT} -all`] },
    "mx.pass.test": { TXT: [`v=spf1 ip4:${CLIENT} -all`], A: [CLIENT] },
    "fail.test": { TXT: ["v=spf1 ip4:198.51.100.1 -all"] },
    "soft.test": { TXT: ["v=spf1 ~all"] },
    "neutral.test": { TXT: ["v=spf1 ?all"] },
    "nospf.test": { A: ["198.51.100.7"] },
    "servfail.test": { rcode: "SERVFAIL" },
    "slow.test": { delayMs: 3000, TXT: ["v=spf1 +all"] },
    "two.test": { TXT: ["v=spf1 -all", "v=spf1 +all"] },
    "syntax.test": { TXT: ["v=spf1 ip4:300.1.2.3 frobnicate -all"] },
    "mx.fail.test": { TXT: ["v=spf1 -all"] },
    // DKIM keys
    "sel._domainkey.signed.test": { TXT: [rsa] },
    "ed._domainkey.signed.test": { TXT: [`v=DKIM1; k=ed25519; p=${edPublic}`] },
    "sel._domainkey.other.test": { TXT: [rsa] },
    "sel._domainkey.mail.relaxed.test": { TXT: [rsa] },
    "sel._domainkey.mail.strict.test": { TXT: [rsa] },
    "sel._domainkey.broken.test": { rcode: "SERVFAIL" },
    "sel._domainkey.hang.test": { delayMs: 5000, TXT: [rsa] },
    "arc._domainkey.forwarder.test": { TXT: [`v=DKIM1; k=rsa; p=${otherPublic}`] },
    "arc._domainkey.relay.test": { TXT: [rsa] },
    // DMARC
    "signed.test": { TXT: ["v=spf1 -all"] },
    "_dmarc.signed.test": { TXT: ["v=DMARC1; p=reject"] },
    "_dmarc.pass.test": { TXT: ["v=DMARC1; p=reject"] },
    "reject.test": { TXT: ["v=spf1 -all"] },
    "_dmarc.reject.test": { TXT: ["v=DMARC1; p=reject"] },
    "quarantine.test": { TXT: ["v=spf1 -all"] },
    "_dmarc.quarantine.test": { TXT: ["v=DMARC1; p=quarantine"] },
    "monitor.test": { TXT: ["v=spf1 -all"] },
    "_dmarc.monitor.test": { TXT: ["v=DMARC1; p=none"] },
    "testing.test": { TXT: ["v=spf1 -all"] },
    "_dmarc.testing.test": { TXT: ["v=DMARC1; p=reject; t=y"] },
    "relaxed.test": { TXT: ["v=spf1 -all"] },
    "_dmarc.relaxed.test": { TXT: ["v=DMARC1; p=reject"] },
    "bounce.relaxed.test": { TXT: [`v=spf1 ip4:${CLIENT} -all`] },
    "strict.test": { TXT: ["v=spf1 -all"] },
    "_dmarc.strict.test": { TXT: ["v=DMARC1; p=reject; adkim=s; aspf=s"] },
    "bounce.strict.test": { TXT: [`v=spf1 ip4:${CLIENT} -all`] },
    "broken.test": { TXT: ["v=spf1 -all"] },
    "_dmarc.broken.test": { TXT: ["v=DMARC1; p=reject"] },
    "hang.test": { TXT: ["v=spf1 -all"] },
    "sampled.test": { TXT: ["v=spf1 -all"] },
    "_dmarc.sampled.test": { TXT: ["v=DMARC1; p=reject; pct=50"] },
    "zero.test": { TXT: ["v=spf1 -all"] },
    "_dmarc.zero.test": { TXT: ["v=DMARC1; p=quarantine; pct=0"] },
    "_dmarc.dnsfail.test": { rcode: "SERVFAIL" },
    "_dmarc.hang.test": { TXT: ["v=DMARC1; p=reject"] },
  };
}
let edPublic = "";
let otherPublic = "";
const SIGN_JOBS = {
  signed: { message: "news@signed.test", selector: "sel", domain: "signed.test" },
  broken: { message: "news@broken.test", selector: "sel", domain: "broken.test" },
  other: { message: "ceo@reject.test", selector: "sel", domain: "other.test" },
  relaxed: { message: "x@relaxed.test", selector: "sel", domain: "mail.relaxed.test" },
  strict: { message: "x@strict.test", selector: "sel", domain: "mail.strict.test" },
  hang: { message: "news@hang.test", selector: "sel", domain: "hang.test" },
} as const;
/** Messages signed once in before(): message(from) signed by the RSA key; "twice" adds an Ed25519 signature to "signed". */
const SIGNED = {} as Record<keyof typeof SIGN_JOBS | "twice", string>;
/**
 * ARC chains sealed by dkimpy in before(), as two forwarders would (RFC 8617 §5.1): forwarder.test checks the
 * original, writes its Authentication-Results and seals (i=1, cv=none); relay.test then writes its own, with
 * the arc= result it found, and seals again: "pass" gives i=2 cv=pass, "fail" gives i=2 cv=fail; "footer"
 * is relay.test acting as a mailing list, which adds a footer to the body before it seals (i=2 cv=pass).
 */
const ARC_ORIGINAL = message("list@elsewhere.test");
const ARC_AR1 = "Authentication-Results: forwarder.test; spf=pass smtp.mailfrom=alice@pass.test; dkim=none\r\n";
const ARC_AR2_PASS = "Authentication-Results: relay.test; arc=pass (i=1) smtp.remote-ip=198.51.100.20; spf=none smtp.mailfrom=list@forwarder.test\r\n";
const ARC_AR2_FAIL = "Authentication-Results: relay.test; arc=fail (i=1 broken) smtp.remote-ip=198.51.100.20\r\n";
const ARC_FOOTER = "--\r\nlist@relay.test\r\n";
const DKIMPY_ARC = {} as Record<"once" | "twice" | "cvFail" | "footer", string>;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-auth-"));
  const rsa = opensslKey("rsa", "RSA");
  rsaKey = rsa.file;
  rsaPem = rsa.publicB64;
  const ed = opensslKey("ed", "ed25519");
  edPublic = ed.publicB64;
  edKey = path.join(dir, "ed.raw");
  const der = crypto.createPrivateKey(fs.readFileSync(ed.file)).export({ type: "pkcs8", format: "der" });
  fs.writeFileSync(edKey, der.subarray(der.length - 32).toString("base64"));
  const other = opensslKey("other", "RSA");
  otherKey = other.file;
  otherPublic = other.publicB64;
  const names = Object.keys(SIGN_JOBS) as (keyof typeof SIGN_JOBS)[];
  const once = names.length + 1;
  const out = dkimsignAll([
    ...names.map((n) => ({ ...SIGN_JOBS[n], message: message(SIGN_JOBS[n].message), keyFile: () => rsaKey })),
    { message: 0, selector: "ed", domain: "signed.test", keyFile: () => edKey, algorithm: "ed25519-sha256" },
    { message: ARC_ORIGINAL, prepend: ARC_AR1, selector: "arc", domain: "forwarder.test", keyFile: () => otherKey, arcSrvId: "forwarder.test" },
    { message: once, prepend: ARC_AR2_PASS, selector: "arc", domain: "relay.test", keyFile: () => rsaKey, arcSrvId: "relay.test" },
    { message: once, prepend: ARC_AR2_FAIL, selector: "arc", domain: "relay.test", keyFile: () => rsaKey, arcSrvId: "relay.test" },
    { message: once, prepend: ARC_AR2_PASS, footer: ARC_FOOTER, selector: "arc", domain: "relay.test", keyFile: () => rsaKey, arcSrvId: "relay.test" },
  ]);
  names.forEach((n, i) => (SIGNED[n] = out[i]!));
  SIGNED.twice = out[names.length]!;
  [DKIMPY_ARC.once, DKIMPY_ARC.twice, DKIMPY_ARC.cvFail, DKIMPY_ARC.footer] = out.slice(once, once + 4) as [string, string, string, string];
  dns = await startDnsServer({});
  dns.setZone(zone());
});

after(async () => {
  await dns.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("SPF", () => {
  const cases: [string, string, string][] = [
    ["alice@pass.test", "pass", `spf=pass smtp.mailfrom=alice@pass.test`],
    ["alice@fail.test", "fail", `spf=fail smtp.mailfrom=alice@fail.test`],
    ["alice@soft.test", "softfail", `spf=softfail smtp.mailfrom=alice@soft.test`],
    ["alice@neutral.test", "neutral", `spf=neutral smtp.mailfrom=alice@neutral.test`],
    ["alice@nospf.test", "none", `spf=none smtp.mailfrom=alice@nospf.test`],
    ["alice@unknown-domain.test", "none", `spf=none smtp.mailfrom=alice@unknown-domain.test`],
    ["alice@servfail.test", "temperror", `spf=temperror smtp.mailfrom=alice@servfail.test`],
    ["alice@slow.test", "temperror", `spf=temperror smtp.mailfrom=alice@slow.test`],
    ["alice@two.test", "permerror", `spf=permerror smtp.mailfrom=alice@two.test`],
    ["alice@syntax.test", "permerror", `spf=permerror smtp.mailfrom=alice@syntax.test`],
  ];
  for (const [sender, result, fragment] of cases) {
    test(`MAIL FROM ${sender}: ${result}`, async () => {
      const r = await runCheck(message("someone@elsewhere.test"), { sender, helo: "client.example" });
      const ar = header(r, "Authentication-Results");
      assert.ok(ar.startsWith(`${HOST}; ${fragment};`), ar);
      const rspf = header(r, "Received-SPF");
      assert.ok(rspf.startsWith(`${result} (${HOST}: domain ${sender.split("@")[1]} `), rspf);
      assert.ok(rspf.endsWith(`client-ip=${CLIENT}; envelope-from="${sender}"; helo=client.example; identity=mailfrom; receiver=${HOST};`), rspf);
      assert.deepEqual(r.verdict, { kind: "accept" }, "spf_fail defaults to tag");
    });
  }

  test("the HELO identity is checked as well, and alone for MAIL FROM <>", async () => {
    const both = await runCheck(message("x@elsewhere.test"), { sender: "alice@fail.test", helo: "mx.pass.test" });
    assert.match(header(both, "Authentication-Results"), /; spf=fail smtp\.mailfrom=alice@fail\.test; spf=pass smtp\.helo=mx\.pass\.test; dkim=none;/);
    const bounce = await runCheck(message("x@elsewhere.test"), { sender: "", helo: "mx.pass.test" });
    const ar = header(bounce, "Authentication-Results");
    assert.ok(ar.startsWith(`${HOST}; spf=pass smtp.helo=mx.pass.test; dkim=none;`), ar);
    assert.equal(header(bounce, "Received-SPF"), `pass (${HOST}: domain mx.pass.test designates ${CLIENT} as permitted sender) client-ip=${CLIENT}; helo=mx.pass.test; identity=helo; receiver=${HOST};`);
    const literal = await runCheck(message("x@elsewhere.test"), { sender: "alice@pass.test", helo: "[192.0.2.10]" });
    assert.doesNotMatch(header(literal, "Authentication-Results"), /smtp\.helo/, "no HELO check for an address literal");
  });

  test("spf_fail = reject refuses with 550 5.7.23, junk files it, for the MAIL FROM identity", async () => {
    const r = await runCheck(message("x@elsewhere.test"), { sender: "alice@fail.test" }, { spf_fail: "reject" });
    assert.deepEqual(r.verdict, {
      kind: "reject",
      reply: { code: 550, enhanced: "5.7.23", lines: [`Message refused: the SPF record of fail.test does not permit ${CLIENT} to send its mail`] },
      reason: `SPF of fail.test does not permit ${CLIENT}`,
    });
    const junk = await runCheck(message("x@elsewhere.test"), { sender: "alice@fail.test" }, { spf_fail: "junk" });
    assert.equal(junk.verdict.kind, "junk");
    const soft = await runCheck(message("x@elsewhere.test"), { sender: "alice@soft.test" }, { spf_fail: "reject" });
    assert.equal(soft.verdict.kind, "accept", "softfail is not fail");
    const helo = await runCheck(message("x@elsewhere.test"), { sender: "", helo: "mx.fail.test" }, { spf_fail: "reject" });
    assert.equal(helo.verdict.kind, "reject", "for MAIL FROM <> the HELO identity is the one");
  });

  test("a DNS failure never refuses; dns_temperror = defer asks the client to retry (451 4.7.24)", async () => {
    const tag = await runCheck(message("x@elsewhere.test"), { sender: "alice@servfail.test" }, { spf_fail: "reject" });
    assert.equal(tag.verdict.kind, "accept");
    const defer = await runCheck(message("x@elsewhere.test"), { sender: "alice@servfail.test" }, { dns_temperror: "defer" });
    assert.equal(defer.verdict.kind, "reject");
    assert.deepEqual(defer.verdict.kind === "reject" && defer.verdict.reply, { code: 451, enhanced: "4.7.24", lines: ["SPF record of servfail.test could not be checked (DNS error), try again later"] });
  });
});

describe("DKIM", () => {
  test("a message signed by dkimsign (RSA 2048) passes; its body modified, it fails", async () => {
    const signed = SIGNED.signed;
    const b = /b=([A-Za-z0-9+/]{8})/.exec(signed.slice(signed.indexOf(" b=")))![1]!;
    const bValue = /\//.test(b) ? `"${b}"` : b; // "/" is not allowed in an RFC 2045 token: quoted
    const r = await runCheck(signed, { sender: "news@signed.test" });
    const ar = header(r, "Authentication-Results");
    assert.match(ar, new RegExp(`; dkim=pass header\\.d=signed\\.test header\\.s=sel header\\.a=rsa-sha256 header\\.b=${bValue.replace(/[+/]/g, "\\$&")}; dmarc=pass \\(p=reject\\) header\\.from=signed\\.test policy\\.dmarc=reject;`));
    assert.deepEqual(r.verdict, { kind: "accept" });

    const modified = signed.replace("Hello there.", "Hello there!");
    const bad = await runCheck(modified, { sender: "news@signed.test" });
    const badAr = header(bad, "Authentication-Results");
    assert.match(badAr, /; dkim=fail \(body hash did not verify\) header\.d=signed\.test header\.s=sel /);
    assert.match(badAr, /; dmarc=fail \(p=reject\) header\.from=signed\.test policy\.dmarc=reject;/);
    assert.equal(bad.verdict.kind, "reject");
  });

  test("an Ed25519 signature (RFC 8463) and an RSA one on the same message: one result each", async () => {
    const twice = SIGNED.twice;
    const ar = header(await runCheck(twice, { sender: "news@signed.test" }), "Authentication-Results");
    assert.match(ar, /dkim=pass header\.d=signed\.test header\.s=ed header\.a=ed25519-sha256 header\.b=("?)[^ ;]{8}\1; dkim=pass header\.d=signed\.test header\.s=sel header\.a=rsa-sha256 /);
  });

  test("a key lookup that fails (SERVFAIL) is temperror, and DMARC p=reject then does not refuse", async () => {
    const signed = SIGNED.broken;
    const r = await runCheck(signed, { sender: "news@broken.test" });
    const ar = header(r, "Authentication-Results");
    assert.match(ar, /; dkim=temperror \(DNS failure: ESERVFAIL\) header\.d=broken\.test /);
    assert.match(ar, /; dmarc=fail \(p=reject\) header\.from=broken\.test policy\.dmarc=reject;/);
    assert.deepEqual(r.verdict, { kind: "accept" });
    const defer = await runCheck(signed, { sender: "news@broken.test" }, { dns_temperror: "defer" });
    assert.deepEqual(defer.verdict.kind === "reject" && defer.verdict.reply, { code: 451, enhanced: "4.7.1", lines: ["DMARC of broken.test could not be checked (DNS error), try again later"] });
  });
});

describe("DMARC", () => {
  test("p=reject, nothing aligned (forged From): 550 5.7.1 naming the domain", async () => {
    const r = await runCheck(message("ceo@reject.test"), { sender: "alice@pass.test" });
    assert.match(header(r, "Authentication-Results"), /; dmarc=fail \(p=reject\) header\.from=reject\.test policy\.dmarc=reject; arc=none$/);
    assert.deepEqual(r.verdict, {
      kind: "reject",
      reply: { code: 550, enhanced: "5.7.1", lines: ["Message refused: the DMARC policy of reject.test (p=reject) says to reject mail that fails authentication"] },
      reason: "DMARC policy of reject.test (p=reject) not met",
    });
    const junk = await runCheck(message("ceo@reject.test"), {}, { dmarc_reject: "junk" });
    assert.deepEqual(junk.verdict, { kind: "junk", reason: "DMARC policy of reject.test (p=reject) not met" });
    const tag = await runCheck(message("ceo@reject.test"), {}, { dmarc_reject: "tag" });
    assert.deepEqual(tag.verdict, { kind: "accept" });
  });

  test("p=reject, a DKIM signature of another domain passes but does not align", async () => {
    const signed = SIGNED.other;
    const r = await runCheck(signed, { sender: "alice@pass.test" });
    const ar = header(r, "Authentication-Results");
    assert.match(ar, /; dkim=pass header\.d=other\.test .*; dmarc=fail \(p=reject\) header\.from=reject\.test/);
    assert.equal(r.verdict.kind, "reject");
  });

  test("p=reject, SPF aligned (MAIL FROM in the From domain): pass", async () => {
    const r = await runCheck(message("alice@pass.test"), { sender: "alice@pass.test" });
    assert.match(header(r, "Authentication-Results"), /; dmarc=pass \(p=reject\) header\.from=pass\.test policy\.dmarc=reject;/);
    assert.deepEqual(r.verdict, { kind: "accept" });
  });

  test("p=quarantine: junk by default, tag when configured", async () => {
    const r = await runCheck(message("x@quarantine.test"));
    assert.match(header(r, "Authentication-Results"), /; dmarc=fail \(p=quarantine\) header\.from=quarantine\.test policy\.dmarc=quarantine;/);
    assert.deepEqual(r.verdict, { kind: "junk", reason: "DMARC policy of quarantine.test (p=quarantine) not met" });
    assert.deepEqual((await runCheck(message("x@quarantine.test"), {}, { dmarc_quarantine: "tag" })).verdict, { kind: "accept" });
  });

  test("p=none: fail reported, message accepted; t=y lowers p=reject to quarantine", async () => {
    const r = await runCheck(message("x@monitor.test"));
    assert.match(header(r, "Authentication-Results"), /; dmarc=fail \(p=none\) header\.from=monitor\.test policy\.dmarc=none;/);
    assert.deepEqual(r.verdict, { kind: "accept" });
    const t = await runCheck(message("x@testing.test"));
    assert.match(header(t, "Authentication-Results"), /; dmarc=fail \(p=reject\) header\.from=testing\.test policy\.dmarc=quarantine;/);
    assert.equal(t.verdict.kind, "junk");
  });

  test("relaxed alignment (default): SPF of bounce.relaxed.test and DKIM d=mail.relaxed.test align with relaxed.test", async () => {
    const spfAligned = await runCheck(message("x@relaxed.test"), { sender: "b@bounce.relaxed.test" });
    assert.match(header(spfAligned, "Authentication-Results"), /; dmarc=pass \(p=reject\) header\.from=relaxed\.test/);
    const signed = SIGNED.relaxed;
    const dkimAligned = await runCheck(signed, { sender: "alice@pass.test" });
    assert.match(header(dkimAligned, "Authentication-Results"), /; dkim=pass header\.d=mail\.relaxed\.test .*; dmarc=pass \(p=reject\) header\.from=relaxed\.test/);
    assert.deepEqual(dkimAligned.verdict, { kind: "accept" });
  });

  test("strict alignment (adkim=s, aspf=s): the same subdomain identities do not align", async () => {
    const spfSub = await runCheck(message("x@strict.test"), { sender: "b@bounce.strict.test" });
    assert.match(header(spfSub, "Authentication-Results"), /; spf=pass smtp\.mailfrom=b@bounce\.strict\.test;.*; dmarc=fail \(p=reject\) header\.from=strict\.test/);
    assert.equal(spfSub.verdict.kind, "reject");
    const signed = SIGNED.strict;
    const dkimSub = await runCheck(signed, { sender: "alice@pass.test" });
    assert.match(header(dkimSub, "Authentication-Results"), /; dkim=pass header\.d=mail\.strict\.test .*; dmarc=fail \(p=reject\) header\.from=strict\.test/);
    assert.equal(dkimSub.verdict.kind, "reject");
  });

  test("pct (RFC 7489 §6.6.4): a failing message outside the sample gets the next lower policy", async () => {
    const inSample = await runCheck(message("x@sampled.test"), {}, {}, { random: () => 0.49 });
    assert.match(header(inSample, "Authentication-Results"), /; dmarc=fail \(p=reject pct=50\) header\.from=sampled\.test policy\.dmarc=reject;/);
    assert.equal(inSample.verdict.kind, "reject");
    const outside = await runCheck(message("x@sampled.test"), {}, {}, { random: () => 0.5 });
    assert.match(header(outside, "Authentication-Results"), /; dmarc=fail \(p=reject pct=50\) header\.from=sampled\.test policy\.dmarc=quarantine;/);
    assert.deepEqual(outside.verdict, { kind: "junk", reason: "DMARC policy of sampled.test (p=quarantine) not met" });
    const zero = await runCheck(message("x@zero.test"), {}, {}, { random: () => 0 });
    assert.match(header(zero, "Authentication-Results"), /; dmarc=fail \(p=quarantine pct=0\) header\.from=zero\.test policy\.dmarc=none;/);
    assert.deepEqual(zero.verdict, { kind: "accept" });
  });

  test("a DMARC record lookup that fails (SERVFAIL) is temperror: accepted, or 451 4.7.1 with dns_temperror = defer", async () => {
    const r = await runCheck(message("x@dnsfail.test"));
    assert.match(header(r, "Authentication-Results"), /; dmarc=temperror header\.from=dnsfail\.test; arc=none$/);
    assert.deepEqual(r.verdict, { kind: "accept" });
    const defer = await runCheck(message("x@dnsfail.test"), {}, { dns_temperror: "defer" });
    assert.deepEqual(defer.verdict.kind === "reject" && defer.verdict.reply, { code: 451, enhanced: "4.7.1", lines: ["DMARC of dnsfail.test could not be checked (DNS error), try again later"] });
  });

  test("no From domain: no dmarc result, nothing refused", async () => {
    const r = await runCheck("To: bob@petrel.test\r\nSubject: no from\r\n\r\nbody\r\n");
    assert.doesNotMatch(header(r, "Authentication-Results"), /dmarc=/);
    assert.deepEqual(r.verdict, { kind: "accept" });
  });
});

describe("ARC", () => {
  async function sealed(body = "Hello there.\r\n"): Promise<string> {
    // A forwarder that checked the original and sealed it (RFC 8617 §5.1): its A-R, then the ARC set.
    const original = `Authentication-Results: forwarder.test; spf=pass smtp.mailfrom=alice@pass.test\r\n${message("list@elsewhere.test", body)}`;
    const set = await sealMessage(Buffer.from(original), {
      signingDomain: "forwarder.test",
      selector: "arc",
      privateKey: fs.readFileSync(otherKey),
      cv: "none",
      authResults: "forwarder.test; spf=pass smtp.mailfrom=alice@pass.test",
    });
    return set.toString() + original;
  }

  test("a sealed chain verifies: arc=pass", async () => {
    const r = await runCheck(await sealed(), { sender: "list@forwarder.test" });
    assert.match(header(r, "Authentication-Results"), /; arc=pass \(i=1\)$/);
  });

  test("a chain broken by a later change of the body: arc=fail", async () => {
    const broken = (await sealed()).replace("Hello there.", "Buy now.");
    const r = await runCheck(broken, { sender: "list@forwarder.test" });
    assert.match(header(r, "Authentication-Results"), /; arc=fail \(.+\)$/);
  });
});

describe("ARC sealed by dkimpy (an independent sealer)", () => {
  // What Petrel reports for each chain: everything but the arc= result is the same for all of them.
  const ar = async (msg: string): Promise<CheckResult> => runCheck(msg, { sender: "list@forwarder.test" });
  const others = `${HOST}; spf=none smtp.mailfrom=list@forwarder.test; spf=pass smtp.helo=mx.pass.test; dkim=none; dmarc=none header.from=elsewhere.test;`;

  test("sealed once (i=1, cv=none) with the sealer's Authentication-Results: arc=pass (i=1)", async () => {
    const msg = DKIMPY_ARC.once;
    assert.match(msg, /^ARC-Seal: i=1; cv=none; a=rsa-sha256; d=forwarder\.test; s=arc;/);
    assert.ok(msg.includes("\r\nARC-Authentication-Results: i=1; forwarder.test; spf=pass smtp.mailfrom=alice@pass.test;"), msg);
    const r = await ar(msg);
    // The Chain Validation Status (RFC 8617 §5.2) as the method "arc"; the comment names the newest instance.
    assert.equal(header(r, "Authentication-Results"), `${others} arc=pass (i=1)`);
    assert.deepEqual(r.verdict, { kind: "accept" });
  });

  test("sealed twice (i=2, cv=pass): arc=pass (i=2); also when the second hop added a footer before sealing", async () => {
    const msg = DKIMPY_ARC.twice;
    assert.match(msg, /^ARC-Seal: i=2; cv=pass; a=rsa-sha256; d=relay\.test; s=arc;/);
    assert.match(msg, /\r\nARC-Seal: i=1; cv=none; /);
    assert.equal(header(await ar(msg), "Authentication-Results"), `${others} arc=pass (i=2)`);
    // RFC 8617 §5.2 step 4: only the newest ARC-Message-Signature must verify; the list's footer breaks i=1's body hash, not the chain.
    const footer = DKIMPY_ARC.footer;
    assert.ok(footer.endsWith(`Hello there.\r\n${ARC_FOOTER}`));
    assert.equal(header(await ar(footer), "Authentication-Results"), `${others} arc=pass (i=2)`);
  });

  test("the message changed after the last seal (body or a signed header field): arc=fail", async () => {
    const body = DKIMPY_ARC.once.replace("Hello there.", "Buy now.");
    assert.equal(header(await ar(body), "Authentication-Results"), `${others} arc=fail (i=1 no valid signature)`);
    const subject = DKIMPY_ARC.once.replace("Subject: test", "Subject: urgent");
    assert.equal(header(await ar(subject), "Authentication-Results"), `${others} arc=fail (i=1 no valid signature)`);
    const afterTwo = DKIMPY_ARC.twice.replace("Hello there.", "Buy now.");
    const r = await ar(afterTwo);
    assert.equal(header(r, "Authentication-Results"), `${others} arc=fail (i=2 no valid signature)`);
    assert.deepEqual(r.verdict, { kind: "accept" }, "a failed chain is reported, it refuses nothing by itself");
  });

  test("the newest seal says cv=fail (the second hop found the chain broken): arc=fail", async () => {
    const msg = DKIMPY_ARC.cvFail;
    assert.match(msg, /^ARC-Seal: i=2; cv=fail; a=rsa-sha256; d=relay\.test; s=arc;/);
    // RFC 8617 §5.2 step 2: a chain whose newest seal has cv=fail fails, whatever the signatures say.
    assert.equal(header(await ar(msg), "Authentication-Results"), `${others} arc=fail (i=2 cv=fail)`);
  });
});

describe("the run", () => {
  const options = { hostname: HOST, dnsServers: ["127.0.0.1:9"], policy: DEFAULT_POLICY };
  const ctx: CheckContext = { id: "Q", peerAddress: CLIENT, helo: "h.test", ptrName: null, receivedFrom: "from h.test (unknown [192.0.2.1])", sender: "a@pass.test", recipients: [], authenticated: false, tls: false };

  test("not for authenticated clients, nor with [auth] checks = false", () => {
    assert.equal(createAuthCheck(options).start({ ...ctx, authenticated: true }), null);
    assert.equal(createAuthCheck({ ...options, policy: { ...DEFAULT_POLICY, checks: false } }).start(ctx), null);
    assert.equal(createAuthCheck(options).name, "auth");
  });

  test("abort mid-message releases the run without an unhandled error", async () => {
    const run = createAuthCheck({ ...options, dnsServers: [`127.0.0.1:${dns.port}`] }).start(ctx)!;
    run.write(Buffer.from("From: a@pass.test\r\nSubject: x\r\n"));
    run.abort();
    run.write(Buffer.from("\r\nmore\r\n")); // ignored after abort
    await new Promise((r) => setTimeout(r, 50));
  });

  test("a key lookup that never answers: finish resolves at the deadline, DKIM temperror, nothing refused", async () => {
    const signed = SIGNED.hang;
    const t = performance.now();
    const r = await runCheck(signed, { sender: "news@hang.test" }, {}, { dnsTimeoutMs: 4000, deadlineMs: 400 });
    const ms = performance.now() - t;
    assert.ok(ms >= 390 && ms < 2000, `${ms} ms`);
    assert.equal(header(r, "Authentication-Results"), `${HOST}; spf=fail smtp.mailfrom=news@hang.test; spf=pass smtp.helo=mx.pass.test; dkim=temperror (timed out)`);
    assert.deepEqual(r.verdict, { kind: "accept" });
  });

  test("an IPv4-mapped IPv6 client is checked as IPv4; an empty message still gets results", async () => {
    const r = await runCheck("", { peerAddress: `::ffff:${CLIENT}` });
    assert.equal(header(r, "Authentication-Results"), `${HOST}; spf=pass smtp.mailfrom=alice@pass.test; spf=pass smtp.helo=mx.pass.test; dkim=none; arc=none`);
    assert.match(header(r, "Received-SPF"), new RegExp(`client-ip=${CLIENT.replace(/\./g, "\\.")};`));
  });
});

describe("hostile input", () => {
  test(`only the topmost ${MAX_SIGNATURES} DKIM signatures are verified; the rest are counted in dkim=policy`, async () => {
    const fakes = Array.from({ length: 12 }, (_, i) => `DKIM-Signature: v=1; a=rsa-sha256; d=f${i}.test; s=s; l=${1000 + i}; h=from; bh=AAAA; b=AAAA\r\n`).join("");
    const at = SIGNED.signed.indexOf("From: ");
    const r = await runCheck(SIGNED.signed.slice(0, at) + fakes + SIGNED.signed.slice(at), { sender: "news@signed.test" });
    const ar = header(r, "Authentication-Results");
    assert.equal((ar.match(/dkim=/g) ?? []).length, MAX_SIGNATURES + 1);
    assert.match(ar, /; dkim=pass header\.d=signed\.test header\.s=sel /);
    assert.match(ar, /header\.d=f8\.test [^;]*; dkim=policy \(3 more signatures not verified, limit 10\); dmarc=pass /);
    assert.deepEqual(r.verdict, { kind: "accept" });
  });

  test(`a header section over ${MAX_HEADER_SECTION} octets is refused 552 5.3.4 unparsed; one just under is checked, in any pieces`, async () => {
    const filler = (octets: number): string => "X-A: b\r\n".repeat(Math.floor(octets / 8));
    const forged = (octets: number): string => `${filler(octets)}From: ceo@reject.test\r\nSubject: x\r\n\r\nbody\r\n`;
    const under = forged(MAX_HEADER_SECTION - 100);
    for (const piece of [5, 4096, 1 << 20]) {
      // A generous DNS timeout: the test writes every piece in one turn of the event loop, which c-ares' timer would count.
      const r = await runCheck(under, {}, {}, { dnsTimeoutMs: 3000 }, piece);
      assert.equal(r.verdict.kind === "reject" && r.verdict.reply.enhanced, "5.7.1", `pieces of ${piece}: DMARC still decides`);
    }
    const t = performance.now();
    const over = await runCheck(forged(4 * MAX_HEADER_SECTION), {}, {}, {}, 65536);
    assert.ok(performance.now() - t < 1000);
    assert.deepEqual(over.verdict, { kind: "reject", reply: { code: 552, enhanced: "5.3.4", lines: [`Message header section too large (over ${MAX_HEADER_SECTION} octets)`] }, reason: "header section too large" });
    assert.equal(header(over, "Authentication-Results"), `${HOST}; spf=pass smtp.mailfrom=alice@pass.test; spf=pass smtp.helo=mx.pass.test; dkim=permerror (header section over ${MAX_HEADER_SECTION} octets)`);
    // The limit counts the header section only: a large body is fine, and so is a message that is all header but small.
    assert.equal((await runCheck(`From: ceo@reject.test\r\n\r\n${"b".repeat(MAX_HEADER_SECTION * 2)}\r\n`, {}, {}, {}, 65536)).verdict.kind, "reject");
    assert.equal((await runCheck("From: x@nowhere.test\r\nSubject: no body", {}, {}, {}, 1)).verdict.kind, "accept");
  });

  const fields = (r: CheckResult): string[] => r.headers.flatMap((h) => h.split(/\r\n(?![ \t])/).filter((l) => l !== ""));

  test("HELO and MAIL FROM that try to add a field or a result cannot", async () => {
    const helo = "evil.test\r\nX-Injected: 1; dkim=pass header.d=bank.test";
    const sender = '"a;b\r\nX-Injected: 2 (x"@fail.test';
    const r = await runCheck(message("ceo@reject.test"), { helo, sender });
    for (const h of r.headers) {
      assert.ok(h.endsWith("\r\n"));
      assert.doesNotMatch(h.slice(0, -2).replace(/\r\n[ \t]/g, " "), /[\x00-\x08\x0a-\x1f\x7f]/, "only folding line breaks, no controls");
      for (const line of h.split("\r\n")) assert.ok(Buffer.byteLength(line) <= 998);
    }
    assert.deepEqual(fields(r).map((f) => f.slice(0, f.indexOf(":"))), ["Authentication-Results", "Received-SPF"]);
    const ar = header(r, "Authentication-Results");
    assert.ok(ar.includes('smtp.mailfrom="a;b X-Injected: 2 (x"@fail.test;'), ar);
    assert.equal(resinfoMethods(ar), "spf,dkim,dmarc,arc");
    // Unquoted specials in MAIL FROM, and a HELO reported as smtp.helo for MAIL FROM <>.
    const bare = header(await runCheck(message("x@elsewhere.test"), { sender: "a;dkim=pass(@fail.test" }), "Authentication-Results");
    assert.ok(bare.includes('smtp.mailfrom="a;dkim=pass("@fail.test;'), bare);
    assert.equal(resinfoMethods(bare), "spf,spf,dkim,dmarc,arc");
    const bounce = await runCheck(message("x@elsewhere.test"), { sender: "", helo: "x; dkim=pass (y" });
    assert.ok(header(bounce, "Authentication-Results").startsWith(`${HOST}; spf=none smtp.helo="x; dkim=pass (y"; dkim=none;`));
    assert.ok(header(bounce, "Received-SPF").endsWith(`client-ip=${CLIENT}; helo="x; dkim=pass (y"; identity=helo; receiver=${HOST};`));
  });

  test("a From domain and DKIM tags from the message are escaped too", async () => {
    const msg = message("x@reject.test", "body\r\n", 'DKIM-Signature: v=1; a=rsa-sha256; d=a.test;dkim=pass; s=x"y; h=from; bh=AAAA; b=AA(A)A\r\n');
    const r = await runCheck(msg);
    const ar = header(r, "Authentication-Results");
    assert.equal(resinfoMethods(ar), "spf,spf,dkim,dmarc,arc");
  });
});
