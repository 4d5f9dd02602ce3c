// The inbound authentication check ("auth"): SPF (RFC 7208) for MAIL FROM and HELO, DKIM verification
// (RFC 6376), DMARC with alignment (RFC 7489) and ARC (RFC 8617), with mailauth in its strict (RFC) mode
// and every DNS query through `[dns] servers`. SPF runs from start(), while the message streams in; the
// header section (at most 256 KB, at most 10 DKIM signatures: header-gate.ts) and then the body go into
// mailauth's DKIM verifier, which hashes the body as it comes (no copy of the message is kept).
// finish() never rejects: errors and a check that outlives its deadline are temperror, which never refuses.
// Trusts nothing in the message or the envelope: auth-results.ts escapes all of it.
import { PassThrough } from "node:stream";
import { arc, dkimVerify, dmarc, spf, type ARCData, type ARCResult, type DKIMVerifyResult, type SPFResult } from "mailauth";
import type { Logger } from "../core/log.js";
import { reply } from "../core/reply.js";
import { authVerdict, type AuthPolicy } from "./auth-policy.js";
import {
  ARC_RESULTS,
  DKIM_RESULTS,
  DMARC_POLICIES,
  DMARC_RESULTS,
  type DmarcPolicy,
  SPF_RESULTS,
  authenticationResults,
  receivedSpf,
  type ArcOutcome,
  type AuthOutcome,
  type DkimOutcome,
  type DmarcOutcome,
  type SpfOutcome,
} from "./auth-results.js";
import { createDnsLookup, type DnsLookup } from "./dns-lookup.js";
import { HeaderGate } from "./header-gate.js";
import { combineVerdicts, type CheckContext, type CheckResult, type CheckVerdict, type MessageCheck, type MessageCheckRun } from "./message-check.js";

export interface AuthCheckOptions {
  /** This host: the authserv-id of Authentication-Results and the receiver of Received-SPF. */
  readonly hostname: string;
  /** `[dns] servers`. */
  readonly dnsServers: readonly string[];
  /** `[auth]`: `checks` off makes start() return null for every message. */
  readonly policy: AuthPolicy & { readonly checks: boolean };
  /** c-ares' per-query timeout (ms) and tries per server; defaults 2500 and 2, as the MX router's. */
  readonly dnsTimeoutMs?: number;
  readonly dnsTries?: number;
  /** Longest wait at the end of DATA for the checks still running; what is unfinished then is temperror. */
  readonly deadlineMs?: number;
  /** Smallest RSA key accepted for DKIM and ARC (RFC 8301 §3.2: 1024). */
  readonly minKeyBits?: number;
  /** Random source in [0, 1) for DMARC pct sampling; Math.random by default. */
  readonly random?: () => number;
  readonly log?: Logger;
}

const DEFAULT_DEADLINE_MS = 20_000;
/** A HELO name worth an SPF check of its own (RFC 7208 §2.3): a domain name with a dot, not an address literal. */
const FQDN = /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$/;

export function createAuthCheck(opts: AuthCheckOptions): MessageCheck {
  const lookup = createDnsLookup({
    servers: opts.dnsServers,
    ...(opts.dnsTimeoutMs !== undefined ? { timeoutMs: opts.dnsTimeoutMs } : {}),
    ...(opts.dnsTries !== undefined ? { tries: opts.dnsTries } : {}),
  });
  return {
    name: "auth",
    start(ctx: CheckContext): MessageCheckRun | null {
      if (!opts.policy.checks || ctx.authenticated) return null;
      return startRun(opts, lookup, ctx);
    },
  };
}

type Settled<T> = { kind: "done"; value: T } | { kind: "failed"; error: unknown } | { kind: "timeout" };

function settle<T>(p: Promise<T>): Promise<Exclude<Settled<T>, { kind: "timeout" }>> {
  return p.then(
    (value) => ({ kind: "done", value }) as const,
    (error: unknown) => ({ kind: "failed", error }) as const,
  );
}

function startRun(opts: AuthCheckOptions, lookup: DnsLookup, ctx: CheckContext): MessageCheckRun {
  const deadlineMs = opts.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const minBitLength = opts.minKeyBits ?? 1024;
  const common = { resolver: lookup, strict: true, mta: opts.hostname } as const;
  // SPF needs only the envelope: started now, it is usually done before DATA ends.
  const spfMailFrom = settle(spf({ ...common, ip: ctx.peerAddress, helo: ctx.helo, maxElapsedTime: deadlineMs, ...(ctx.sender ? { sender: ctx.sender } : {}) }));
  const spfHelo = ctx.sender && FQDN.test(ctx.helo) ? settle(spf({ ...common, ip: ctx.peerAddress, helo: ctx.helo, maxElapsedTime: deadlineMs })) : null;
  const body = new PassThrough();
  const dkim = settle(dkimVerify(body, { resolver: lookup, strict: true, minBitLength, ...(ctx.sender ? { sender: ctx.sender } : {}) }));
  const gate = new HeaderGate(MAX_HEADER_SECTION, MAX_SIGNATURES);
  let tooLarge = false;
  let ended = false;

  return {
    write(chunk: Buffer): void {
      if (ended) return;
      const r = gate.add(chunk);
      if (r.kind === "too large") {
        // mailauth would keep (and parse) the whole header section: drop the DKIM run instead.
        ended = tooLarge = true;
        body.destroy(new Error("header section too large"));
        return;
      }
      for (const piece of r.pieces) body.write(piece);
    },
    abort(): void {
      if (ended) return;
      ended = true;
      body.destroy(new Error("transaction ended without a message"));
    },
    async finish(): Promise<CheckResult> {
      if (!ended) for (const piece of gate.end()) body.write(piece);
      ended = true;
      if (!body.destroyed) body.end();
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<{ kind: "timeout" }>((resolve) => {
        timer = setTimeout(() => resolve({ kind: "timeout" }), deadlineMs);
      });
      const within = <T>(p: Promise<Settled<T>>): Promise<Settled<T>> => Promise.race([p, expired]);
      try {
        const spfSettled = await within(spfMailFrom);
        const heloSettled = spfHelo ? await within(spfHelo) : null;
        if (tooLarge) {
          const outcome = oversized(spfFrom(spfSettled, ctx, ctx.sender ? "mailfrom" : "helo"), heloSettled ? spfFrom(heloSettled, ctx, "helo") : null);
          return checkResult(opts, outcome, TOO_LARGE);
        }
        const evaluated = await evaluate(opts, lookup, ctx, minBitLength, { spf: spfSettled, helo: heloSettled, dkim: await within(dkim), within });
        const dropped = gate.droppedSignatures;
        const notVerified = { result: "policy", reason: `${dropped} more signatures not verified, limit ${MAX_SIGNATURES}` } as const;
        return checkResult(opts, dropped === 0 ? evaluated : { ...evaluated, dkim: [...evaluated.dkim, notVerified] });
      } catch (err) {
        // Not expected (every step is settled above); the message still gets through, marked unchecked.
        opts.log?.warn({ err, id: ctx.id }, "authentication checks failed");
        return checkResult(opts, unchecked(ctx));
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** The two header fields and the verdict: the policy's, or `imposed` when that is stronger. */
function checkResult(opts: AuthCheckOptions, outcome: AuthOutcome, imposed?: CheckVerdict): CheckResult {
  const verdict = authVerdict(opts.policy, outcome);
  return {
    headers: [authenticationResults(opts.hostname, outcome), receivedSpf(opts.hostname, outcome.spf)],
    verdict: imposed ? combineVerdicts([imposed, verdict]) : verdict,
  };
}

interface Gathered {
  readonly spf: Settled<SPFResult>;
  readonly helo: Settled<SPFResult> | null;
  readonly dkim: Settled<DKIMVerifyResult>;
  readonly within: <T>(p: Promise<Settled<T>>) => Promise<Settled<T>>;
}

async function evaluate(opts: AuthCheckOptions, lookup: DnsLookup, ctx: CheckContext, minBitLength: number, g: Gathered): Promise<AuthOutcome> {
  const spfOutcome = spfFrom(g.spf, ctx, ctx.sender ? "mailfrom" : "helo");
  const heloOutcome = g.helo ? spfFrom(g.helo, ctx, "helo") : null;
  if (g.dkim.kind !== "done") {
    const reason = g.dkim.kind === "timeout" ? "timed out" : errorText(g.dkim.error);
    return { spf: spfOutcome, helo: heloOutcome, dkim: [{ result: "temperror", reason }], dmarc: null, arc: null };
  }
  const verified = g.dkim.value;
  const dkimOutcomes = verified.results.map(dkimFrom);

  const arcSettled = verified.arc ? await g.within(settle(arc(verified.arc as ARCData, { resolver: lookup, strict: true, minBitLength, ip: ctx.peerAddress }))) : null;
  const arcResult: ARCResult | undefined = arcSettled?.kind === "done" ? arcSettled.value : undefined;

  const dmarcSettled = await g.within(
    settle(
      dmarc({
        headerFrom: verified.headerFrom,
        fromFields: verified.fromFields,
        // RFC 7489 §4.1: the SPF-authenticated identifier is MAIL FROM's domain, or HELO's for MAIL FROM <>.
        spfDomains: spfOutcome.result === "pass" ? [spfOutcome.domain] : [],
        dkimDomains: verified.results
          .filter((r) => r.status.result === "pass" && typeof r.signingDomain === "string")
          .map((r) => ({ domain: r.signingDomain!, ...(r.id ? { id: r.id } : {}), ...(r.status.underSized ? { underSized: r.status.underSized } : {}) })),
        ...(arcResult ? { arcResult } : {}),
        resolver: lookup,
        strict: true,
      }),
    ),
  );
  return {
    spf: spfOutcome,
    helo: heloOutcome,
    dkim: dkimOutcomes,
    dmarc: dmarcFrom(dmarcSettled, verified, opts.random ?? Math.random),
    arc: arcSettled === null ? { result: "none" } : arcFrom(arcSettled),
  };
}

function keyword<T extends string>(value: unknown, allowed: readonly T[], otherwise: T): T {
  return typeof value === "string" && (allowed as readonly string[]).includes(value) ? (value as T) : otherwise;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function spfFrom(s: Settled<SPFResult>, ctx: CheckContext, identity: "mailfrom" | "helo"): SpfOutcome {
  const base = { identity, sender: identity === "mailfrom" ? ctx.sender : "", helo: ctx.helo } as const;
  const fallbackDomain = identity === "mailfrom" ? ctx.sender.slice(ctx.sender.lastIndexOf("@") + 1) : ctx.helo;
  if (s.kind !== "done") return { ...base, result: "temperror", domain: fallbackDomain.toLowerCase(), clientIp: ctx.peerAddress };
  const r = s.value;
  return { ...base, result: keyword(r.status.result, SPF_RESULTS, "temperror"), domain: r.domain, clientIp: r["client-ip"] || ctx.peerAddress };
}

function dkimFrom(r: DKIMVerifyResult["results"][number]): DkimOutcome {
  const result = keyword(r.status.result, DKIM_RESULTS, "permerror");
  const sig = typeof r.signature === "string" ? r.signature.replace(/\s+/g, "") : "";
  return {
    result,
    ...(r.signingDomain ? { domain: r.signingDomain } : {}),
    ...(r.selector ? { selector: r.selector } : {}),
    ...(r.algo ? { algorithm: r.algo } : {}),
    // RFC 6008 §2: enough of b= to tell two signatures of one domain apart.
    ...(sig ? { signaturePrefix: sig.slice(0, 8) } : {}),
    ...(typeof r.status.comment === "string" && result !== "none" ? { reason: r.status.comment } : {}),
  };
}

/** RFC 7489 §6.6.4: a failing message outside the pct sample gets the next lower policy. */
const LOWER: Record<DmarcPolicy, DmarcPolicy> = { reject: "quarantine", quarantine: "none", none: "none" };

/** The record's pct= (RFC 7489 §6.3), 100 when absent or not a number 0-100 (mailauth parses it but does not apply it). */
function dmarcPercent(record: string | undefined): number {
  const m = /(?:^|;)\s*pct\s*=\s*(\d{1,3})\s*(?=;|$)/i.exec(record ?? "");
  const n = m ? Number(m[1]) : 100;
  return n <= 100 ? n : 100;
}

function dmarcFrom(s: Settled<Awaited<ReturnType<typeof dmarc>>>, verified: DKIMVerifyResult, random: () => number): DmarcOutcome | null {
  if (s.kind !== "done") {
    // Unfinished or failed: temporary, for the From domain when there is exactly one.
    const domains = new Set(verified.headerFrom.map((a) => a.slice(a.lastIndexOf("@") + 1).toLowerCase()));
    const [only] = domains;
    return domains.size === 1 && only ? { result: "temperror", fromDomain: only, policy: null, published: null } : null;
  }
  const r = s.value;
  if (!r) return null; // no From domain, or several (RFC 7489 §6.6.1): nothing to evaluate
  const result = keyword(r.status.result, DMARC_RESULTS, "permerror");
  const from = typeof r.status.header?.from === "string" ? r.status.header.from : r.domain;
  const applies = result === "pass" || result === "fail";
  let policy = keyword(r.policy, DMARC_POLICIES, "none");
  // pct sampling for a failing message; t=y (RFC 9989, mailauth's policy already one step lower) replaces it.
  const percent = dmarcPercent(r.rr);
  if (result === "fail" && !r.testMode && percent < 100 && random() * 100 >= percent) policy = LOWER[policy];
  return {
    result,
    fromDomain: from,
    policy: applies ? policy : null,
    published: applies ? keyword(r.p, DMARC_POLICIES, "none") : null,
    ...(applies && percent < 100 ? { percent } : {}),
  };
}

function arcFrom(s: Settled<ARCResult>): ArcOutcome | null {
  if (s.kind !== "done") return null; // no "temperror" for arc (RFC 8617 §10.1): left out
  const r = s.value;
  const result = keyword(r.status.result, ARC_RESULTS, "fail");
  return {
    result,
    ...(typeof r.i === "number" && r.i > 0 ? { instance: r.i } : {}),
    ...(typeof r.status.comment === "string" ? { reason: r.status.comment } : {}),
  };
}

/**
 * The longest header section checked, as Exchange Online's limit. DKIM and DMARC need the whole header
 * section in memory (mailauth parses it into one object per field): measured, 10 MB of 5-byte fields took
 * 5.7 s and 715 MB. A longer one is refused rather than let through unchecked, which would let a From
 * placed after the limit escape its domain's DMARC policy.
 */
export const MAX_HEADER_SECTION = 256 * 1024;
/**
 * DKIM signatures verified per message, the topmost (RFC 6376 §6.1 lets a verifier limit them). Each can
 * cost a hash of the whole body (a distinct l=), a key lookup and an RSA operation: measured, 500 of them
 * on a 9 MB message took 7 s of CPU.
 */
export const MAX_SIGNATURES = 10;
const TOO_LARGE: CheckVerdict = {
  kind: "reject",
  reply: reply(552, "5.3.4", `Message header section too large (over ${MAX_HEADER_SECTION} octets)`),
  reason: "header section too large",
};

/** The outcome for a header section over MAX_HEADER_SECTION: SPF as checked, no DKIM/DMARC/ARC evaluation. */
function oversized(spf: SpfOutcome, helo: SpfOutcome | null): AuthOutcome {
  return { spf, helo, dkim: [{ result: "permerror", reason: `header section over ${MAX_HEADER_SECTION} octets` }], dmarc: null, arc: null };
}

/** The outcome when the checks themselves broke: everything temporary, so nothing is refused for it. */
function unchecked(ctx: CheckContext): AuthOutcome {
  const identity = ctx.sender ? "mailfrom" : "helo";
  return {
    spf: spfFrom({ kind: "failed", error: null }, ctx, identity),
    helo: null,
    dkim: [{ result: "temperror", reason: "not checked" }],
    dmarc: null,
    arc: null,
  };
}
