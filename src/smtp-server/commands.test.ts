// Unit tests for the command table: which verbs each state allows and what is refused with which code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { COMMANDS, STATES, commandFor, refusal } from "./commands.js";

test("state rules", () => {
  const allowed = (verb: string) => STATES.filter((s) => COMMANDS.get(verb)!.allowedIn.includes(s));
  assert.deepEqual(allowed("MAIL"), ["idle"]);
  assert.deepEqual(allowed("RCPT"), ["mail", "rcpt"]);
  assert.deepEqual(allowed("DATA"), ["rcpt"]);
  // BDAT runs everywhere so that a refused chunk is still read (the session refuses it after).
  for (const v of ["BDAT", "EHLO", "HELO", "RSET", "NOOP", "QUIT", "HELP", "VRFY", "EXPN", "TURN"]) assert.deepEqual(allowed(v), [...STATES], v);
});

test("refusals carry the RFC 5321 codes", () => {
  const code = (verb: string, state: (typeof STATES)[number]) => {
    const r = refusal(COMMANDS.get(verb)!, state);
    return `${r.code} ${r.enhanced}`;
  };
  assert.equal(code("MAIL", "init"), "503 5.5.1");
  assert.equal(code("MAIL", "rcpt"), "503 5.5.1");
  assert.equal(code("RCPT", "idle"), "503 5.5.1");
  assert.equal(code("DATA", "mail"), "554 5.5.1");
  assert.equal(code("DATA", "bdat"), "503 5.5.1");
});

test("junk commands are the ones that cannot lead to a delivery, EHLO and HELO included", () => {
  const junk = [...COMMANDS.values()].filter((r) => r.junk).map((r) => r.verb).sort();
  assert.deepEqual(junk, ["AUTH", "EHLO", "ETRN", "EXPN", "HELO", "HELP", "NOOP", "RSET", "STARTTLS", "VRFY"]);
});

test("HTTP verbs and header-like lines are not SMTP; commands are", () => {
  for (const line of ["GET / HTTP/1.1", "POST /x HTTP/1.0", "CONNECT a:25 HTTP/1.1", "HEAD /", "PUT /"])
    assert.equal(commandFor(line.split(" ")[0]!, line)?.nonSmtp, true, line);
  for (const line of ["Host: mx.test", "User-Agent: curl/8", "X-Forwarded-For: 1.2.3.4", "Subject: hi"]) assert.equal(commandFor("", line)?.nonSmtp, true, line);
  for (const line of ["MAIL FROM:<a@b>", "RCPT TO:<a@b>", "EHLO x", "NOOP"]) assert.notEqual(commandFor(line.split(" ")[0]!, line)?.nonSmtp, true, line);
});
