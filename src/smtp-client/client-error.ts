// Errors of the outbound SMTP client that its callers (the queue runner) act on: `temporary` says
// retry later (4xx, a lost connection, a timeout, a TLS failure) or bounce (5xx), and `reply` is the
// remote reply when there was one (for the log line and a bounce's Diagnostic-Code, RFC 3464 §2.3.6).
import { MailError } from "../core/errors.js";
import type { Reply } from "../core/reply.js";

export type ClientErrorCode = "connect" | "greeting" | "ehlo" | "tls" | "auth" | "protocol" | "closed" | "timeout" | "state" | "source";

export class ClientError extends MailError {
  override readonly code: ClientErrorCode;
  readonly temporary: boolean;
  constructor(code: ClientErrorCode, message: string, options: { temporary: boolean; reply?: Reply; cause?: unknown }) {
    super(code, message, options);
    this.name = "ClientError";
    this.code = code;
    this.temporary = options.temporary;
  }
}
