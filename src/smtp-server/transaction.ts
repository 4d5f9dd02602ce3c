// One mail transaction (RFC 5321 §3.3): from MAIL to the end of DATA/BDAT LAST, or RSET.
// The session owns at most one; RSET, EHLO and a finished message throw it away.
import type { Reply } from "../core/reply.js";
import type { ExpandedRecipients } from "../delivery/expanded-recipients.js";
import type { AcceptedRecipient, IncomingMessage } from "../spool/spool.js";
import type { MailDsnParams } from "./dsn-params.js";
import { DecisionCache } from "./recipient-policy.js";

export interface RecipientAttempt {
  readonly to: string;
  readonly reply: Reply;
}

export class Transaction {
  readonly recipients: AcceptedRecipient[] = [];
  /** Every RCPT, accepted or not, with the reply it got: for the transaction log line. */
  readonly attempts: RecipientAttempt[] = [];
  /** Open while BDAT chunks arrive (RFC 3030); null otherwise. */
  bdat: { message: IncomingMessage | null; size: number; failed: Reply | null } | null = null;
  /** Policy decisions by address: each address is resolved (and a list expanded) once per message. */
  readonly decisions = new DecisionCache();
  /** RFC 3461 RET and ENVID from MAIL, when given. */
  dsn: MailDsnParams | null = null;
  /** Created at the first accepted RCPT. */
  expanded: ExpandedRecipients | null = null;

  constructor(
    readonly id: string,
    /** Reverse-path; "" for <>. */
    readonly sender: string,
    readonly declaredSize: number | null,
    readonly smtpUtf8: boolean,
  ) {}
}
