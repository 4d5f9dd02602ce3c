// The inbound checks of one message as the spool sees them: started from the envelope (who sent it), fed
// the content as it streams, finished together at the end of DATA into one verdict and the header fields
// to store, or aborted. A check that throws is logged and counts as "accept" without fields; a field that
// is not one well-formed header field is left out (a check must never break a stored copy).
import type { Logger } from "../core/log.js";
import { combineVerdicts, type CheckContext, type CheckResult, type CheckVerdict, type MessageCheck, type MessageCheckRun, type StagedMessage } from "../trust/message-check.js";

/** A check and its run on one message. */
interface ActiveRun {
  readonly name: string;
  readonly run: MessageCheckRun;
}

/** What the checks decided: the combined verdict, and the fields for every copy (CRLF-ended, in check order). */
export interface CheckOutcome {
  readonly verdict: CheckVerdict;
  readonly fields: string;
}

export class CheckStage {
  private ended = false;

  private constructor(
    private readonly runs: readonly ActiveRun[],
    private readonly id: string,
    private readonly log: Logger,
  ) {}

  /** Starts every check that applies; null when none does (the spool's fast path). */
  static start(checks: readonly MessageCheck[], ctx: CheckContext, log: Logger): CheckStage | null {
    const runs: ActiveRun[] = [];
    for (const check of checks) {
      try {
        const run = check.start(ctx);
        if (run) runs.push({ name: check.name, run });
      } catch (err) {
        log.error({ err, id: ctx.id, check: check.name }, "inbound check failed to start; the message is not checked by it");
      }
    }
    return runs.length ? new CheckStage(runs, ctx.id, log) : null;
  }

  /** Content as received (CRLF), in order. */
  write(piece: Buffer): void {
    for (const r of this.runs) r.run.write(piece);
  }

  /** End of DATA: every run finishes (in parallel); one log line with each check's verdict. */
  async finish(staged: StagedMessage): Promise<CheckOutcome> {
    const results = await Promise.all(this.runs.map((r) => this.finishRun(r, staged)));
    this.ended = true;
    const verdict = combineVerdicts(results.map((r) => r.verdict));
    this.log.info(
      { id: this.id, verdict: verdict.kind, ...(verdict.kind === "accept" ? {} : { reason: verdict.reason }), checks: this.runs.map((r, i) => ({ name: r.name, verdict: results[i]!.verdict.kind })) },
      "inbound checks",
    );
    const fields = results.flatMap((r, i) => r.headers.filter((h) => this.validField(h, this.runs[i]!.name)));
    return { verdict, fields: fields.join("") };
  }

  /** The transaction ended without a message: every run still going is told so (once). */
  abort(): void {
    if (this.ended) return;
    this.ended = true;
    for (const r of this.runs) {
      try {
        r.run.abort();
      } catch (err) {
        this.log.error({ err, id: this.id, check: r.name }, "inbound check failed to abort");
      }
    }
  }

  /** A run's finish(); one that breaks its promise and throws is logged and counts as "accept" without headers. */
  private async finishRun(r: ActiveRun, staged: StagedMessage): Promise<CheckResult> {
    try {
      return await r.run.finish(staged);
    } catch (err) {
      this.log.error({ err, id: this.id, check: r.name }, "inbound check failed; the message is accepted without its result");
      return { headers: [], verdict: { kind: "accept" } };
    }
  }

  private validField(field: string, check: string): boolean {
    if (FIELD_RE.test(field)) return true;
    this.log.error({ check, field: field.slice(0, 200) }, "inbound check returned a malformed header field; it is left out");
    return false;
  }
}

/** A complete header field ending in CRLF, folded lines allowed, no other CR or LF, no NUL (RFC 5322 §2.2). */
const FIELD_RE = /^[\x21-\x39\x3b-\x7e]+:[^\r\n\0]*\r\n(?:[ \t][^\r\n\0]*\r\n)*$/;
