// Server side of SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login-00) as SMTP AUTH
// (RFC 4954) and POP3 AUTH (RFC 5034) carry them: base64 lines in, challenges or credentials out.
// Trusts nothing from the client: base64 is strict (RFC 4648 §4, canonical), text strict UTF-8, no
// NUL inside a field, fields capped in length; nothing here throws on client input.
import { foldCase } from "../core/address.js";
import { decodeUtf8, hasControlChars } from "../protocol/wire-text.js";

export type SaslMechanism = "PLAIN" | "LOGIN";
export const SASL_MECHANISMS: readonly SaslMechanism[] = ["PLAIN", "LOGIN"] as const;

export type SaslStep =
  /** Send "334 " + base64(text) (SMTP) or "+ " + base64(text) (POP3), then pass the reply line to next(). */
  | { readonly kind: "challenge"; readonly text: string }
  /** authzid is "" or the user (foldCase-equal): the caller checks user/password only. */
  | { readonly kind: "credentials"; readonly authzid: string; readonly user: string; readonly password: string }
  /** The client answered a challenge with "*" (RFC 4954 §4): SMTP 501 5.0.0. */
  | { readonly kind: "cancelled" }
  /** Bad base64, missing or extra NULs, invalid UTF-8, empty or too long fields: SMTP 501 5.5.2. */
  | { readonly kind: "malformed"; readonly why: string }
  /** Well formed, but asks to act as another user (authzid ≠ user): SMTP 535 5.7.8, counted as a failure. */
  | { readonly kind: "refused"; readonly why: string };

export interface SaslExchange {
  /** The step for the AUTH command itself (with its initial response, if any). Call once, first. */
  first(): SaslStep;
  /** The step for one client line answering a challenge (CRLF already removed). */
  next(line: string): SaslStep;
}

/** RFC 4616 §2: servers must take 255 octets; a mail address is at most 64 + 1 + 255. */
export const MAX_SASL_USER_BYTES = 320;
export const MAX_SASL_PASSWORD_BYTES = 1024;
/** Longer base64 than any valid PLAIN message (authzid + user + password + 2 NULs) is refused undecoded. */
export const MAX_SASL_BASE64 = 4 * Math.ceil((2 * MAX_SASL_USER_BYTES + MAX_SASL_PASSWORD_BYTES + 2) / 3);

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes strict base64 (RFC 4648 §4): the standard alphabet, padding to a multiple of 4, no white
 * space, and zero pad bits (§3.5), so every byte string has exactly one accepted spelling. Node's own
 * decoder skips anything it does not know, hence the checks first. "" is the empty string.
 */
export function decodeBase64Strict(text: string): Buffer | null {
  if (text.length > MAX_SASL_BASE64 || !BASE64.test(text)) return null;
  const bytes = Buffer.from(text, "base64");
  return bytes.toString("base64") === text ? bytes : null;
}

type Field = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly why: string };

function field(name: string, bytes: Uint8Array, max: number): Field {
  if (bytes.length > max) return { ok: false, why: `${name} longer than ${max} bytes` };
  const text = decodeUtf8(bytes);
  return text === null ? { ok: false, why: `${name} is not UTF-8` } : { ok: true, text };
}

/** A user name is an account address: never empty, no control characters (it reaches the logs). */
function userField(bytes: Uint8Array): Field {
  const f = field("user", bytes, MAX_SASL_USER_BYTES);
  if (!f.ok) return f;
  if (f.text === "") return { ok: false, why: "empty user" };
  if (hasControlChars(f.text) || f.text.includes("\t")) return { ok: false, why: "NUL or control character in user" };
  return f;
}

function passwordField(bytes: Uint8Array): Field {
  if (bytes.length === 0) return { ok: false, why: "empty password" };
  if (bytes.includes(0)) return { ok: false, why: "NUL in password" };
  return field("password", bytes, MAX_SASL_PASSWORD_BYTES);
}

/** One PLAIN message (RFC 4616 §2): base64 of "authzid NUL authcid NUL passwd". */
export function parsePlain(base64: string): SaslStep {
  const bytes = decodeBase64Strict(base64);
  if (bytes === null) return { kind: "malformed", why: "invalid base64" };
  const nul1 = bytes.indexOf(0);
  const nul2 = nul1 < 0 ? -1 : bytes.indexOf(0, nul1 + 1);
  if (nul2 < 0) return { kind: "malformed", why: "PLAIN message needs two NULs" };
  if (bytes.indexOf(0, nul2 + 1) >= 0) return { kind: "malformed", why: "PLAIN message has more than two NULs" };
  const authzid = field("authzid", bytes.subarray(0, nul1), MAX_SASL_USER_BYTES);
  if (!authzid.ok) return { kind: "malformed", why: authzid.why };
  const user = userField(bytes.subarray(nul1 + 1, nul2));
  if (!user.ok) return { kind: "malformed", why: user.why };
  const password = passwordField(bytes.subarray(nul2 + 1));
  if (!password.ok) return { kind: "malformed", why: password.why };
  // Only a user acting as themselves: an authzid, when given, names the same account.
  if (authzid.text !== "" && foldCase(authzid.text) !== foldCase(user.text))
    return { kind: "refused", why: "authorization identity differs from the user" };
  return { kind: "credentials", authzid: authzid.text, user: user.text, password: password.text };
}

const CANCEL = "*";
const FINISHED: SaslStep = { kind: "malformed", why: "exchange already finished" };

/** PLAIN: the message comes as the initial response, or after an empty challenge. */
class PlainExchange implements SaslExchange {
  private state: "start" | "message" | "done" = "start";

  constructor(private readonly initial: string | undefined) {}

  first(): SaslStep {
    if (this.state !== "start") return FINISHED;
    if (this.initial !== undefined) return this.end(parsePlain(this.initial));
    this.state = "message";
    return { kind: "challenge", text: "" };
  }

  next(line: string): SaslStep {
    if (this.state !== "message") return FINISHED;
    return this.end(line === CANCEL ? { kind: "cancelled" } : parsePlain(line));
  }

  private end(step: SaslStep): SaslStep {
    this.state = "done";
    return step;
  }
}

/** LOGIN: "Username:" and "Password:" challenges, each answered with one base64 line. */
class LoginExchange implements SaslExchange {
  private state: "start" | "user" | "password" | "done" = "start";
  private user = "";

  constructor(private readonly initial: string | undefined) {}

  first(): SaslStep {
    if (this.state !== "start") return FINISHED;
    this.state = "user";
    // RFC 4954 §4 allows the user name as initial response; then only the password is asked for.
    return this.initial === undefined ? { kind: "challenge", text: "Username:" } : this.takeUser(this.initial);
  }

  next(line: string): SaslStep {
    if (this.state === "start" || this.state === "done") return FINISHED;
    if (line === CANCEL) return this.end({ kind: "cancelled" });
    return this.state === "user" ? this.takeUser(line) : this.takePassword(line);
  }

  private takeUser(line: string): SaslStep {
    const bytes = decodeBase64Strict(line);
    if (bytes === null) return this.end({ kind: "malformed", why: "invalid base64" });
    const user = userField(bytes);
    if (!user.ok) return this.end({ kind: "malformed", why: user.why });
    this.user = user.text;
    this.state = "password";
    return { kind: "challenge", text: "Password:" };
  }

  private takePassword(line: string): SaslStep {
    const bytes = decodeBase64Strict(line);
    if (bytes === null) return this.end({ kind: "malformed", why: "invalid base64" });
    const password = passwordField(bytes);
    if (!password.ok) return this.end({ kind: "malformed", why: password.why });
    return this.end({ kind: "credentials", authzid: "", user: this.user, password: password.text });
  }

  private end(step: SaslStep): SaslStep {
    this.state = "done";
    return step;
  }
}

/**
 * Starts an exchange for the mechanism the client named (any case). `initialResponse` is the AUTH
 * command's second word, if any; "=" stands for an empty initial response (RFC 4954 §4, RFC 5034 §4).
 */
export function startSasl(mechanism: string, initialResponse: string | undefined): SaslExchange | { readonly kind: "unsupported" } {
  const initial = initialResponse === "=" ? "" : initialResponse;
  // ASCII only: "plaın".toUpperCase() would be "PLAIN".
  switch (/^[A-Za-z0-9_-]{1,20}$/.test(mechanism) ? mechanism.toUpperCase() : "") {
    case "PLAIN":
      return new PlainExchange(initial);
    case "LOGIN":
      return new LoginExchange(initial);
    default:
      return { kind: "unsupported" };
  }
}
