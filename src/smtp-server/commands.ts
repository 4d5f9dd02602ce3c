// The SMTP command table (RFC 5321 §4.1, RFC 3030 BDAT): each row names a verb, the states it is
// allowed in, what to answer elsewhere, and the handler. State rules live here and only here.
import { reply, type Reply } from "../core/reply.js";
import type { SmtpSession } from "./session.js";

/** Where the session is: before HELO/EHLO, greeted, after MAIL, after a good RCPT, inside BDAT. */
export const STATES = ["init", "idle", "mail", "rcpt", "bdat"] as const;
export type SessionState = (typeof STATES)[number];

export interface CommandRow {
  readonly verb: string;
  readonly allowedIn: readonly SessionState[];
  /** Replies for states outside allowedIn; others get 503 5.5.1 Bad sequence of commands. */
  readonly refuse?: Partial<Record<SessionState, Reply>>;
  /**
   * Commands that cannot lead to a delivery, counted against limits.max_junk_commands (reset only
   * when a message is delivered). Every other command is bounded elsewhere: MAIL/RCPT/DATA/BDAT
   * by the error cap, limits.max_recipients and the delivery that resets the count, QUIT by ending.
   */
  readonly junk?: boolean;
  /** Not SMTP at all (HTTP verbs): answered 221 2.7.0 and the connection closed; run gets the whole line. */
  readonly nonSmtp?: boolean;
  run(session: SmtpSession, arg: string): Promise<void> | void;
}

const ANY = STATES;
const NON_SMTP_VERBS = ["GET", "POST", "CONNECT", "HEAD", "PUT", "OPTIONS", "DELETE"] as const;
const needHelo = reply(503, "5.5.1", "Error: send HELO/EHLO first");
const needEhlo = reply(503, "5.5.1", "Error: send EHLO first");
const inTransaction = reply(503, "5.5.1", "Error: MAIL transaction in progress");
const needMail = reply(503, "5.5.1", "Error: need MAIL command");
const needRcpt = reply(554, "5.5.1", "Error: no valid recipients");
const inBdat = reply(503, "5.5.1", "Error: BDAT transfer in progress; send BDAT or RSET");
const notImplemented = reply(502, "5.5.1", "Error: command not implemented");

const rows: CommandRow[] = [
  { verb: "EHLO", allowedIn: ANY, junk: true, run: (s, a) => s.hello(a, true) },
  { verb: "HELO", allowedIn: ANY, junk: true, run: (s, a) => s.hello(a, false) },
  {
    verb: "MAIL",
    allowedIn: ["idle"],
    refuse: { init: needHelo, mail: reply(503, "5.5.1", "Error: nested MAIL command"), rcpt: reply(503, "5.5.1", "Error: nested MAIL command"), bdat: inBdat },
    run: (s, a) => s.mail(a),
  },
  { verb: "RCPT", allowedIn: ["mail", "rcpt"], refuse: { init: needHelo, idle: needMail, bdat: inBdat }, run: (s, a) => s.rcpt(a) },
  { verb: "DATA", allowedIn: ["rcpt"], refuse: { init: needHelo, idle: needMail, mail: needRcpt, bdat: inBdat }, run: (s, a) => s.data(a) },
  // BDAT must read its chunk even where it is refused (RFC 3030 §2), or the chunk's bytes would be
  // taken for commands; so it runs in every state and the session refuses after consuming them
  // (with these replies before HELO and MAIL).
  { verb: "BDAT", allowedIn: ANY, refuse: { init: needHelo, idle: needMail }, run: (s, a) => s.bdat(a) },
  // RFC 3207: STARTTLS outside a transaction (the session starts over after it).
  { verb: "STARTTLS", allowedIn: ["init", "idle"], junk: true, refuse: { mail: inTransaction, rcpt: inTransaction, bdat: inTransaction }, run: (s, a) => s.startTls(a) },
  // RFC 4954 §4: AUTH after EHLO and not during a transaction.
  { verb: "AUTH", allowedIn: ["idle"], junk: true, refuse: { init: needEhlo, mail: inTransaction, rcpt: inTransaction, bdat: inTransaction }, run: (s, a) => s.auth(a) },
  // RFC 1985: ETRN after EHLO, outside a transaction (a queue run for one domain).
  { verb: "ETRN", allowedIn: ["idle"], junk: true, refuse: { init: needHelo, mail: inTransaction, rcpt: inTransaction, bdat: inTransaction }, run: (s, a) => s.etrn(a) },
  { verb: "RSET", allowedIn: ANY, junk: true, run: (s, a) => s.rset(a) },
  { verb: "NOOP", allowedIn: ANY, junk: true, run: (s) => s.send(reply(250, "2.0.0", "Ok")) },
  { verb: "QUIT", allowedIn: ANY, run: (s) => s.quit() },
  { verb: "HELP", allowedIn: ANY, junk: true, run: (s, a) => s.help(a) },
  { verb: "VRFY", allowedIn: ANY, junk: true, run: (s, a) => s.vrfy(a) },
  { verb: "EXPN", allowedIn: ANY, junk: true, run: (s, a) => s.expn(a) },
  // Obsolete or unsafe verbs that RFC 5321 names: recognised, not implemented.
  ...["TURN", "SEND", "SOML", "SAML"].map((verb): CommandRow => ({ verb, allowedIn: ANY, run: (s) => s.respond(notImplemented) })),
  // A web client or proxy aimed at port 25 (cross-protocol attacks): Postfix's smtpd_forbidden_commands.
  ...NON_SMTP_VERBS.map((verb): CommandRow => ({ verb, allowedIn: ANY, nonSmtp: true, run: (s, line) => s.nonSmtp(line) })),
];

export const COMMANDS: ReadonlyMap<string, CommandRow> = new Map(rows.map((r) => [r.verb, r]));

/** The row for a line that looks like a mail or HTTP header ("Host: x", "User-Agent: y"). */
const HEADER_LINE: CommandRow = { verb: "(header)", allowedIn: ANY, nonSmtp: true, run: (s, line) => s.nonSmtp(line) };

/** The row a command line's verb names, or the header row for a header-like line; undefined otherwise. */
export function commandFor(verb: string, line: string): CommandRow | undefined {
  return COMMANDS.get(verb) ?? (/^[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*:/.test(line) ? HEADER_LINE : undefined);
}

export const HELP_TEXT = [
  "Petrel SMTP commands:",
  "EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN ETRN",
  "Send mail: EHLO, MAIL FROM:<you>, RCPT TO:<them>, DATA, then the message ending in <CRLF>.<CRLF>",
  "End of HELP info",
];

export function refusal(row: CommandRow, state: SessionState): Reply {
  return row.refuse?.[state] ?? reply(503, "5.5.1", "Error: bad sequence of commands");
}
