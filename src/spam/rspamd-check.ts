// The rspamd check: at the end of DATA the stored message is streamed to rspamd's /checkv2 (rspamd's
// HTTP protocol, v2 headers IP/Helo/From/Rcpt/Queue-Id/Hostname) and its action applied: reject → 550 5.7.1,
// soft reject and greylist → 451 4.7.1, add header / rewrite subject → Junk, no action → accept; the score
// goes into X-Spam-Status/X-Spam-Score. Trusts nothing rspamd answers beyond its syntax (numbers checked,
// text made printable and short). rspamd down, slow or answering garbage never loses mail: accept, tag, log.
import http from "node:http";
import { reply } from "../core/reply.js";
import type { Logger } from "../core/log.js";
import { printable } from "../protocol/wire-text.js";
import type { CheckContext, CheckResult, MessageCheck, MessageCheckRun, StagedMessage } from "../trust/message-check.js";

export interface RspamdCheckOptions {
  /** `[spam] rspamd`: the base URL of rspamd's normal worker (or proxy), e.g. "http://127.0.0.1:11333". */
  readonly url: string;
  /** `[spam] rspamd_timeout`: the whole exchange (connect, upload, answer), in ms. */
  readonly timeoutMs: number;
  readonly log: Logger;
}

/** The parts of rspamd's /checkv2 answer Petrel uses. */
export interface RspamdAnswer {
  readonly action: RspamdAction;
  readonly score: number;
  readonly requiredScore: number;
  /** messages.smtp_message: the text rspamd wants the client to see, when it gives one. */
  readonly smtpMessage: string | null;
}

export const RSPAMD_ACTIONS = ["reject", "soft reject", "greylist", "add header", "rewrite subject", "no action"] as const;
export type RspamdAction = (typeof RSPAMD_ACTIONS)[number];

/** rspamd's JSON answers are a few KB (symbols with options); anything far larger is not an answer. */
const MAX_ANSWER_BYTES = 1024 * 1024;
/** Longest rspamd text echoed in a reply. */
const MAX_REPLY_TEXT = 200;

type Exchange = { readonly kind: "answer"; readonly answer: RspamdAnswer } | { readonly kind: "failed"; readonly reason: string };

export function createRspamdCheck(opts: RspamdCheckOptions): MessageCheck {
  const endpoint = checkEndpoint(opts.url);
  return {
    name: "rspamd",
    start(ctx: CheckContext): MessageCheckRun | null {
      // Submission is the user's own mail: rspamd would judge it as inbound from a local address.
      if (ctx.authenticated) return null;
      return {
        write: () => undefined, // rspamd reads the stored copy at the end (staged.open())
        finish: (message) => check(endpoint, ctx, message, opts),
        abort: () => undefined,
      };
    },
  };
}

/** `<url>/checkv2`, keeping a path prefix (an rspamd behind a proxy at /rspamd/). */
function checkEndpoint(base: string): URL {
  const url = new URL(base);
  if (url.protocol !== "http:") throw new TypeError(`Cannot use rspamd URL ${base}: only http:// is supported`);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/checkv2`;
  return url;
}

async function check(endpoint: URL, ctx: CheckContext, message: StagedMessage, opts: RspamdCheckOptions): Promise<CheckResult> {
  const started = Date.now();
  let result: Exchange;
  try {
    result = await exchange(endpoint, ctx, message, opts.timeoutMs);
  } catch (err) {
    result = { kind: "failed", reason: `error: ${(err as Error).message}` };
  }
  const ms = Date.now() - started;
  if (result.kind === "failed") {
    opts.log.warn({ id: ctx.id, rspamd: endpoint.origin, reason: result.reason, ms }, "rspamd unavailable: message accepted unchecked");
    return { headers: [`X-Spam-Status: Unknown, engine=rspamd (${printable(result.reason, 80)})\r\n`], verdict: { kind: "accept" } };
  }
  const a = result.answer;
  opts.log.info({ id: ctx.id, action: a.action, score: a.score, required: a.requiredScore, ms }, "rspamd");
  return resultFor(a);
}

/** Headers and verdict for an rspamd answer (exported for the tests of the mapping). */
export function resultFor(a: RspamdAnswer): CheckResult {
  const score = a.score.toFixed(2);
  const spam = a.action === "reject" || a.action === "add header" || a.action === "rewrite subject";
  const headers = [`X-Spam-Status: ${spam ? "Yes" : "No"}, score=${score} required=${a.requiredScore.toFixed(2)} engine=rspamd\r\n`, `X-Spam-Score: ${score}\r\n`];
  const text = (fallback: string) => (a.smtpMessage ? printable(a.smtpMessage, MAX_REPLY_TEXT) : fallback);
  switch (a.action) {
    case "reject":
      return { headers, verdict: { kind: "reject", reply: reply(550, "5.7.1", text("Spam message rejected")), reason: `rspamd: reject, score ${score}` } };
    case "soft reject":
      return { headers, verdict: { kind: "reject", reply: reply(451, "4.7.1", text("Try again later")), reason: `rspamd: soft reject, score ${score}` } };
    case "greylist":
      return { headers, verdict: { kind: "reject", reply: reply(451, "4.7.1", text("Greylisted, try again later")), reason: `rspamd: greylist, score ${score}` } };
    case "add header":
    case "rewrite subject":
      return { headers, verdict: { kind: "junk", reason: `rspamd: ${a.action}, score ${score}` } };
    case "no action":
      return { headers, verdict: { kind: "accept" } };
  }
}

/** Parses a /checkv2 body; null when it is not the answer rspamd gives (garbage, an error page, a wrong type). */
export function parseAnswer(body: string): RspamdAnswer | null {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return null;
  }
  if (typeof json !== "object" || json === null) return null;
  const o = json as Record<string, unknown>;
  const action = o["action"];
  const score = o["score"];
  const required = o["required_score"];
  if (typeof action !== "string" || !(RSPAMD_ACTIONS as readonly string[]).includes(action)) return null;
  if (!isScore(score) || !isScore(required)) return null;
  const messages = o["messages"];
  const smtp = typeof messages === "object" && messages !== null ? (messages as Record<string, unknown>)["smtp_message"] : undefined;
  return { action: action as RspamdAction, score, requiredScore: required, smtpMessage: typeof smtp === "string" && smtp.trim() !== "" ? smtp.trim() : null };
}

function isScore(n: unknown): n is number {
  return typeof n === "number" && Number.isFinite(n) && Math.abs(n) < 1e9;
}

/** A header value node:http will send: UTF-8 as its bytes (rspamd reads octets), no line breaks. */
function headerValue(s: string): string {
  return Buffer.from(s.replace(/[\r\n]/g, " "), "utf8").toString("latin1");
}

/** POSTs the message and reads the answer, all within timeoutMs. Resolves, never rejects. */
function exchange(endpoint: URL, ctx: CheckContext, message: StagedMessage, timeoutMs: number): Promise<Exchange> {
  return new Promise<Exchange>((resolve) => {
    let done = false;
    const headers: Record<string, string | string[]> = {
      "Content-Length": String(message.size),
      IP: ctx.peerAddress,
      Helo: headerValue(ctx.helo),
      From: headerValue(ctx.sender),
      "Queue-Id": headerValue(ctx.id),
    };
    if (ctx.recipients.length > 0) headers["Rcpt"] = ctx.recipients.map(headerValue);
    if (ctx.ptrName) headers["Hostname"] = headerValue(ctx.ptrName);
    const req = http.request(endpoint, { method: "POST", headers, agent: false });
    const content = message.open();
    const finish = (r: Exchange) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      if ("destroy" in content && typeof content.destroy === "function") content.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ kind: "failed", reason: `timeout after ${timeoutMs} ms` }), timeoutMs);
    req.on("error", (err: NodeJS.ErrnoException) => finish({ kind: "failed", reason: err.code === "ECONNREFUSED" ? "connection refused" : `error: ${err.code ?? err.message}` }));
    content.on("error", (err: Error) => finish({ kind: "failed", reason: `cannot read the message: ${err.message}` }));
    req.on("response", (res) => {
      const pieces: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) return finish({ kind: "failed", reason: "answer too large" });
        pieces.push(chunk);
      });
      res.on("error", (err) => finish({ kind: "failed", reason: `error: ${err.message}` }));
      res.on("end", () => {
        if (res.statusCode !== 200) return finish({ kind: "failed", reason: `HTTP ${res.statusCode}` });
        const answer = parseAnswer(Buffer.concat(pieces).toString("utf8"));
        finish(answer ? { kind: "answer", answer } : { kind: "failed", reason: "unreadable answer" });
      });
    });
    content.pipe(req);
  });
}
