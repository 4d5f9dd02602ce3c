// SASL PLAIN (RFC 4616) reduced to what POP3 AUTH (RFC 5034 §4) needs: the user and password of one
// base64 message, or null. The checks (strict base64, two NULs, UTF-8, lengths, authzid = user) are
// those of auth/sasl.ts, which SMTP AUTH uses for its whole exchange.
import { parsePlain } from "./sasl.js";

export interface PlainCredentials {
  readonly user: string;
  readonly password: string;
}

/** Decodes a PLAIN response (base64); null when it is malformed or asks to act as someone else. */
export function decodePlain(base64: string): PlainCredentials | null {
  const step = parsePlain(base64);
  return step.kind === "credentials" ? { user: step.user, password: step.password } : null;
}
