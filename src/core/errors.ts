// Errors that callers handle: a stable code, and, where a client must see it, the reply to send.
// Internal causes travel in `cause` and reach logs, never the wire.
import type { Reply } from "./reply.js";

export class MailError extends Error {
  readonly code: string;
  readonly reply: Reply | undefined;
  constructor(code: string, message: string, options: { reply?: Reply; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MailError";
    this.code = code;
    this.reply = options.reply;
  }
}

/** Bad input from a user of the CLI or config: printed as one line, exit status 1 or 2. */
export class UsageError extends MailError {
  constructor(message: string) {
    super("usage", message);
    this.name = "UsageError";
  }
}
