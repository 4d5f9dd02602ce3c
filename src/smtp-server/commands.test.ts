// Unit tests for the command table: which verbs each state allows and what is refused with which code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { COMMANDS, STATES, refusal } from "./commands.js";

test("state rules", () => {
  const allowed = (verb: string) => STATES.filter((s) => COMMANDS.get(verb)!.allowedIn.includes(s));
  assert.deepEqual(allowed("MAIL"), ["idle"]);
  assert.deepEqual(allowed("RCPT"), ["mail", "rcpt"]);
  assert.deepEqual(allowed("DATA"), ["rcpt"]);
  assert.deepEqual(allowed("BDAT"), ["mail", "rcpt", "bdat"]);
  for (const v of ["EHLO", "HELO", "RSET", "NOOP", "QUIT", "HELP", "VRFY", "EXPN", "TURN"]) assert.deepEqual(allowed(v), [...STATES], v);
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

test("junk commands are the NOOP-like ones", () => {
  const junk = [...COMMANDS.values()].filter((r) => r.junk).map((r) => r.verb).sort();
  assert.deepEqual(junk, ["EXPN", "HELP", "NOOP", "RSET", "VRFY"]);
});
