// The POP3 command table (RFC 1939 §4-§7, RFC 2449 CAPA, RFC 5034 AUTH): each row names a verb, the states it is
// allowed in, how many arguments it takes, and its handler. State and arity rules live here and only
// here; handlers in Pop3Session parse the values (message numbers) and trust nothing.
import type { Pop3Session } from "./session.js";

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
  { verb: "USER", allowedIn: AUTHORIZATION, args: one, usage: "USER name", refuse: afterLogin, run: (s, [name]) => s.user(name!) },
  {
    verb: "PASS",
    allowedIn: ["user-given"],
    args: "rest",
    usage: "PASS password",
    refuse: { ...afterLogin, authorization: "send USER first" },
    run: (s, [password]) => s.pass(password!),
  },
  { verb: "APOP", allowedIn: AUTHORIZATION, args: two, usage: "APOP name digest", refuse: afterLogin, run: (s, [name, digest]) => s.apop(name!, digest!) },
  {
    verb: "AUTH",
    allowedIn: AUTHORIZATION,
    args: { min: 1, max: 2 },
    usage: "AUTH mechanism [initial-response]",
    refuse: afterLogin,
    run: (s, [mechanism, initial]) => s.auth(mechanism!, initial),
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

/** What CAPA lists (RFC 2449 §6): only what the table above implements. */
export const CAPABILITIES = ["TOP", "USER", "SASL PLAIN", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "IMPLEMENTATION Petrel"] as const;

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
