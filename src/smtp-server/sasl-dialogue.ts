// The wire half of SMTP AUTH (RFC 4954 §4): parses "AUTH mechanism [initial-response]", sends each
// SASL challenge as a 334 line and reads the client's answers until the exchange (auth/sasl.ts) ends.
// Says nothing about whether the credentials are good: the session checks them and keeps the policy
// (delays, failure counts, lockout). Trusts nothing from the client; never logs what it read.
import { startSasl, type SaslStep } from "../auth/sasl.js";
import { reply, type Reply } from "../core/reply.js";
import { printable } from "../protocol/wire-text.js";

/** RFC 4954 §4: a SASL response line may be 12288 octets long. */
export const MAX_SASL_LINE = 12288;

export interface SaslLines {
  send(r: Reply): void;
  /** The next response line (CRLF removed), "too-long", or null when the client went away. */
  readLine(max: number): Promise<Buffer | "too-long" | null>;
}

export type SaslOutcome =
  /** Answer this and count it as a client error (syntax, unknown mechanism, "*", bad base64). */
  | { readonly kind: "refused"; readonly reply: Reply; readonly why?: string }
  /** Well-formed credentials to check, or an authorization identity that is not the user. */
  | { readonly kind: "credentials"; readonly method: string; readonly user: string; readonly password: string }
  | { readonly kind: "identity-refused"; readonly method: string; readonly why: string }
  | { readonly kind: "closed" };

export async function saslDialogue(arg: string, io: SaslLines): Promise<SaslOutcome> {
  const [mechanism = "", initial, extra] = arg.trim().split(/ +/);
  if (!mechanism || extra !== undefined) return { kind: "refused", reply: reply(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]") };
  const exchange = startSasl(mechanism, initial);
  if ("kind" in exchange) return { kind: "refused", reply: reply(504, "5.5.4", `Unrecognized authentication type: ${printable(mechanism, 20)}`) };
  let step: SaslStep = exchange.first();
  while (step.kind === "challenge") {
    io.send(reply(334, undefined, Buffer.from(step.text, "utf8").toString("base64")));
    const line = await io.readLine(MAX_SASL_LINE);
    if (line === null) return { kind: "closed" };
    step = line === "too-long" ? { kind: "malformed", why: "response too long" } : exchange.next(line.toString("latin1").trim());
  }
  const method = mechanism.toUpperCase();
  switch (step.kind) {
    case "cancelled":
      return { kind: "refused", reply: reply(501, "5.0.0", "Authentication cancelled") };
    case "malformed":
      return { kind: "refused", reply: reply(501, "5.5.2", `Error: ${step.why}`), why: step.why };
    case "refused":
      return { kind: "identity-refused", method, why: step.why };
    case "credentials":
      return { kind: "credentials", method, user: step.user, password: step.password };
  }
}
