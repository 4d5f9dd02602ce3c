// Client side of SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login-00) for SMTP AUTH
// (RFC 4954): picks a mechanism from the server's AUTH keyword and yields the lines to send. The
// server side (auth/sasl.ts) checks what clients send; here we only encode our own credentials.

export type ClientMechanism = "PLAIN" | "LOGIN";

/** PLAIN when offered, else LOGIN; null when the server offers neither. */
export function chooseMechanism(authParams: string): ClientMechanism | null {
  const offered = new Set(authParams.toUpperCase().split(/\s+/).filter(Boolean));
  if (offered.has("PLAIN")) return "PLAIN";
  if (offered.has("LOGIN")) return "LOGIN";
  return null;
}

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

/** AUTH PLAIN with its initial response (RFC 4954 §4): authzid empty, then user and password. */
export function plainCommand(user: string, password: string): string {
  return `AUTH PLAIN ${b64(`\0${user}\0${password}`)}`;
}

/** AUTH LOGIN sends the command, then answers the two 334 challenges with user and password. */
export function loginSteps(user: string, password: string): readonly [string, string, string] {
  return ["AUTH LOGIN", b64(user), b64(password)];
}
