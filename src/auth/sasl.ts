// TEMPORARY stand-in for the SASL module being written on the submit branch (replaced at merge).
export type SaslMechanism = "PLAIN" | "LOGIN";
export const SASL_MECHANISMS: readonly SaslMechanism[] = ["PLAIN", "LOGIN"];
export type SaslStep =
  | { kind: "challenge"; text: string }
  | { kind: "credentials"; authzid: string; user: string; password: string }
  | { kind: "cancelled" }
  | { kind: "malformed"; why: string };
export interface SaslExchange {
  first(): SaslStep;
  next(line: string): SaslStep;
}
const b64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
function decode(s: string): string | null {
  if (s === "=") return "";
  return b64.test(s) ? Buffer.from(s, "base64").toString("utf8") : null;
}
function plain(s: string): SaslStep {
  if (s === "*") return { kind: "cancelled" };
  const d = decode(s);
  if (d === null) return { kind: "malformed", why: "bad base64" };
  const p = d.split("\0");
  if (p.length !== 3 || !p[1]) return { kind: "malformed", why: "bad PLAIN message" };
  return { kind: "credentials", authzid: p[0]!, user: p[1], password: p[2]! };
}
export function startSasl(mechanism: string, initial: string | undefined): SaslExchange | { kind: "unsupported" } {
  const m = mechanism.toUpperCase();
  if (m === "PLAIN")
    return { first: () => (initial === undefined ? { kind: "challenge", text: "" } : plain(initial)), next: plain };
  if (m === "LOGIN") {
    let user: string | null = null;
    const step = (s: string): SaslStep => {
      if (s === "*") return { kind: "cancelled" };
      const d = decode(s);
      if (d === null) return { kind: "malformed", why: "bad base64" };
      if (user === null) {
        user = d;
        return { kind: "challenge", text: "Password:" };
      }
      return { kind: "credentials", authzid: "", user, password: d };
    };
    return { first: () => (initial === undefined ? { kind: "challenge", text: "Username:" } : step(initial)), next: step };
  }
  return { kind: "unsupported" };
}
