// The POP3 command table (RFC 1939 §4-§7, RFC 2449 CAPA, RFC 5034 AUTH, RFC 2595 §4 STLS): each row names a
// verb, the states it is allowed in, how many arguments it takes, whether it sends a password in clear,
// and its handler. State, arity and plaintext-login rules live here and only here, and so does what CAPA
// offers; handlers in Pop3Session parse the values (message numbers) and trust nothing.
import type { Connection } from "../protocol/connection.js";
import type { Pop3Session, Pop3SessionOptions } from "./session.js";

/**
 * Where the session is (RFC 1939 §3). "user-given" is AUTHORIZATION after a USER command, the only
 * place PASS is allowed (§7); "update" is entered by QUIT in TRANSACTION and reads no more commands.
 */
export const STATES = ["authorization", "user-given", "transaction", "update"] as const;
export type Pop3State = (typeof STATES)[number];

/** "rest": the whole text after "VERB " as one argument, spaces included (a password may hold them). */
export type Arity = { readonly min: number; readonly max: number } | "rest";

export interface CommandRow {
  readonly verb: string;
  readonly allowedIn: readonly Pop3State[];
  readonly args: Arity;
  /** Shown when the arguments do not fit, e.g. "LIST [msg]". */
  readonly usage: string;
  /** Texts for states outside allowedIn; others get "command not valid in this state". */
  readonly refuse?: Partial<Record<Pop3State, string>>;
  /**
   * The command carries a password in clear (USER/PASS, AUTH PLAIN): refused without TLS unless
   * pop3.plaintext_login allows it on this connection (RFC 2595 §2.3). APOP sends only a digest.
   */
  readonly plaintextLogin?: true;
  run(session: Pop3Session, args: readonly string[]): Promise<void> | void;
}

const AUTHORIZATION: readonly Pop3State[] = ["authorization", "user-given"];
const TRANSACTION: readonly Pop3State[] = ["transaction"];
const BOTH: readonly Pop3State[] = [...AUTHORIZATION, ...TRANSACTION];

const none = { min: 0, max: 0 };
const one = { min: 1, max: 1 };
const optional = { min: 0, max: 1 };
const two = { min: 2, max: 2 };

const loginFirst = "not logged in yet: use USER and PASS, or APOP, first";
const beforeLogin: Partial<Record<Pop3State, string>> = { authorization: loginFirst, "user-given": loginFirst };
const afterLogin: Partial<Record<Pop3State, string>> = { transaction: "already logged in" };

const rows: CommandRow[] = [
  { verb: "USER", allowedIn: AUTHORIZATION, args: one, usage: "USER name", refuse: afterLogin, plaintextLogin: true, run: (s, [name]) => s.user(name!) },
  {
    verb: "PASS",
    allowedIn: ["user-given"],
    args: "rest",
    usage: "PASS password",
    refuse: { ...afterLogin, authorization: "send USER first" },
    plaintextLogin: true,
    run: (s, [password]) => s.pass(password!),
  },
  { verb: "APOP", allowedIn: AUTHORIZATION, args: two, usage: "APOP name digest", refuse: afterLogin, run: (s, [name, digest]) => s.apop(name!, digest!) },
  {
    verb: "AUTH",
    allowedIn: AUTHORIZATION,
    args: { min: 1, max: 2 },
    usage: "AUTH mechanism [initial-response]",
    refuse: afterLogin,
    plaintextLogin: true,
    run: (s, [mechanism, initial]) => s.auth(mechanism!, initial),
  },
  {
    // RFC 2595 §4: AUTHORIZATION only. Not after USER, so no name given in clear carries over into TLS.
    verb: "STLS",
    allowedIn: ["authorization"],
    args: none,
    usage: "STLS",
    refuse: { "user-given": "STLS must come before USER", transaction: "STLS is only allowed before login" },
    run: (s) => s.stls(),
  },
  { verb: "CAPA", allowedIn: BOTH, args: none, usage: "CAPA", run: (s) => s.capa() },
  { verb: "QUIT", allowedIn: BOTH, args: none, usage: "QUIT", run: (s) => s.quit() },
  { verb: "STAT", allowedIn: TRANSACTION, args: none, usage: "STAT", refuse: beforeLogin, run: (s) => s.stat() },
  { verb: "LIST", allowedIn: TRANSACTION, args: optional, usage: "LIST [msg]", refuse: beforeLogin, run: (s, [n]) => s.list(n) },
  { verb: "UIDL", allowedIn: TRANSACTION, args: optional, usage: "UIDL [msg]", refuse: beforeLogin, run: (s, [n]) => s.uidl(n) },
  { verb: "RETR", allowedIn: TRANSACTION, args: one, usage: "RETR msg", refuse: beforeLogin, run: (s, [n]) => s.retr(n!) },
  { verb: "TOP", allowedIn: TRANSACTION, args: two, usage: "TOP msg lines", refuse: beforeLogin, run: (s, [n, lines]) => s.top(n!, lines!) },
  { verb: "DELE", allowedIn: TRANSACTION, args: one, usage: "DELE msg", refuse: beforeLogin, run: (s, [n]) => s.dele(n!) },
  { verb: "RSET", allowedIn: TRANSACTION, args: none, usage: "RSET", refuse: beforeLogin, run: (s) => s.rset() },
  { verb: "NOOP", allowedIn: TRANSACTION, args: none, usage: "NOOP", refuse: beforeLogin, run: (s) => s.noop() },
];

export const COMMANDS: ReadonlyMap<string, CommandRow> = new Map(rows.map((r) => [r.verb, r]));

/** What a connection tells about itself: enough to decide CAPA and the plaintext-login rule. */
export type Pop3Connection = Pick<Connection, "tlsAvailable" | "secure" | "info">;

/**
 * May a password cross this connection now? Always over TLS; without it as pop3.plaintext_login says
 * (default "loopback": only from this machine). RFC 2595 §2.3: a server with STLS must be able to refuse
 * clear-text logins until TLS is up.
 */
export function plaintextLoginAllowed(conn: Pop3Connection, options: Pick<Pop3SessionOptions, "plaintextLogin">): boolean {
  if (conn.secure) return true;
  const mode = options.plaintextLogin ?? "loopback";
  return mode === "always" || (mode === "loopback" && conn.info.loopback);
}

/**
 * What CAPA lists (RFC 2449 §6) on this connection as it is now: only what the table above implements
 * and this connection may use. STLS only before TLS and with a certificate (RFC 2595 §4); USER and SASL
 * PLAIN only where a password may be sent, so a client is never invited to send one in clear (RFC 2595
 * §2.3, as Dovecot does). The same list in both states (RFC 2449 §5).
 */
export function capabilities(conn: Pop3Connection, options: Pick<Pop3SessionOptions, "plaintextLogin">): string[] {
  const caps = ["TOP"];
  if (plaintextLoginAllowed(conn, options)) caps.push("USER", "SASL PLAIN");
  if (conn.tlsAvailable && !conn.secure) caps.push("STLS");
  caps.push("UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "IMPLEMENTATION Petrel");
  return caps;
}

/** Why a verb cannot be used in a state. */
export function refusal(row: CommandRow, state: Pop3State): string {
  return row.refuse?.[state] ?? `${row.verb} is not valid in this state`;
}

/** Splits the text after the verb by the row's arity; null when it does not fit. */
export function splitArgs(row: CommandRow, rest: string): string[] | null {
  if (row.args === "rest") return rest === "" ? null : [rest];
  const words = rest.split(" ").filter((w) => w !== "");
  return words.length >= row.args.min && words.length <= row.args.max ? words : null;
}
