// What the authentication results lead to, per the `[auth]` policy keys: a DMARC failure under the
// domain's p=reject / p=quarantine (RFC 7489 §6.3, §6.6.3), an SPF "fail" (RFC 7208 §8.4), and DNS
// trouble (RFC 7208 §8.6, RFC 7489 §6.6.2: temporary, never a reason to refuse for good). Trusts the
// outcome it is given; the only outside text in a reply is the domain, made printable first.
import { reply } from "../core/reply.js";
import { printable } from "../protocol/wire-text.js";
import { combineVerdicts, type CheckVerdict } from "./message-check.js";
import type { AuthOutcome } from "./auth-results.js";

export interface AuthPolicy {
  readonly spf_fail: "tag" | "junk" | "reject";
  readonly dmarc_reject: "reject" | "junk" | "tag";
  readonly dmarc_quarantine: "junk" | "tag";
  readonly dns_temperror: "tag" | "defer";
}

const ACCEPT: CheckVerdict = { kind: "accept" };

/** The verdict for a message: the strongest of what DMARC, SPF and DNS trouble each call for. */
export function authVerdict(policy: AuthPolicy, o: AuthOutcome): CheckVerdict {
  return combineVerdicts([dmarcVerdict(policy, o), spfVerdict(policy, o), temporaryVerdict(policy, o)]);
}

/**
 * A DNS failure behind either identifier: a DMARC "fail" then only means "could not tell", since the
 * signature or SPF record that did not answer might have passed and aligned.
 */
function identifierTemporary(o: AuthOutcome): boolean {
  return o.spf.result === "temperror" || o.dkim.some((d) => d.result === "temperror");
}

function dmarcVerdict(policy: AuthPolicy, o: AuthOutcome): CheckVerdict {
  const d = o.dmarc;
  if (!d || d.result !== "fail" || identifierTemporary(o)) return ACCEPT;
  const domain = printable(d.fromDomain, 100);
  const action = d.policy === "reject" ? policy.dmarc_reject : d.policy === "quarantine" ? policy.dmarc_quarantine : "tag";
  const reason = `DMARC policy of ${domain} (p=${d.policy}) not met`;
  switch (action) {
    case "reject":
      return {
        kind: "reject",
        reply: reply(550, "5.7.1", `Message refused: the DMARC policy of ${domain} (p=reject) says to reject mail that fails authentication`),
        reason,
      };
    case "junk":
      return { kind: "junk", reason };
    case "tag":
      return ACCEPT;
  }
}

function spfVerdict(policy: AuthPolicy, o: AuthOutcome): CheckVerdict {
  if (o.spf.result !== "fail") return ACCEPT;
  const domain = printable(o.spf.domain, 100);
  const reason = `SPF of ${domain} does not permit ${o.spf.clientIp}`;
  switch (policy.spf_fail) {
    case "reject":
      // RFC 7372 §3.2: 5.7.23 "SPF validation failed".
      return { kind: "reject", reply: reply(550, "5.7.23", `Message refused: the SPF record of ${domain} does not permit ${o.spf.clientIp} to send its mail`), reason };
    case "junk":
      return { kind: "junk", reason };
    case "tag":
      return ACCEPT;
  }
}

function temporaryVerdict(policy: AuthPolicy, o: AuthOutcome): CheckVerdict {
  if (policy.dns_temperror !== "defer") return ACCEPT;
  if (o.spf.result === "temperror") {
    // RFC 7208 §8.6 / RFC 7372 §3.2: 4.7.24 "SPF validation error".
    const domain = printable(o.spf.domain, 100);
    return { kind: "reject", reply: reply(451, "4.7.24", `SPF record of ${domain} could not be checked (DNS error), try again later`), reason: "SPF temperror" };
  }
  if (o.dmarc?.result === "temperror" || (o.dmarc?.result === "fail" && identifierTemporary(o))) {
    const domain = printable(o.dmarc.fromDomain, 100);
    return { kind: "reject", reply: reply(451, "4.7.1", `DMARC of ${domain} could not be checked (DNS error), try again later`), reason: "DMARC temperror" };
  }
  return ACCEPT;
}
