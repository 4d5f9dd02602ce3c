// Unit tests of the POP3 command table: which verbs each state allows (RFC 1939 §4-§7), the refusal
// texts, argument counts, and that CAPA (RFC 2449 §6) names only what the table implements.
// The session's behaviour on the wire is tested in session.test.ts.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { CAPABILITIES, COMMANDS, STATES, refusal, splitArgs, type CommandRow, type Pop3State } from "./commands.js";

function row(verb: string): CommandRow {
  const r = COMMANDS.get(verb);
  assert.ok(r, `${verb} is in the table`);
  return r;
}

function allowed(state: Pop3State): string[] {
  return [...COMMANDS.values()].filter((r) => r.allowedIn.includes(state)).map((r) => r.verb).sort();
}

describe("POP3 command table", () => {
  test("each state allows exactly the RFC 1939 verbs (plus CAPA and AUTH)", () => {
    assert.deepEqual(allowed("authorization"), ["APOP", "AUTH", "CAPA", "QUIT", "USER"]);
    assert.deepEqual(allowed("user-given"), ["APOP", "AUTH", "CAPA", "PASS", "QUIT", "USER"]);
    assert.deepEqual(allowed("transaction"), ["CAPA", "DELE", "LIST", "NOOP", "QUIT", "RETR", "RSET", "STAT", "TOP", "UIDL"]);
    assert.deepEqual(allowed("update"), [], "UPDATE reads no more commands");
  });

  test("every row names only known states", () => {
    for (const r of COMMANDS.values()) for (const s of r.allowedIn) assert.ok(STATES.includes(s), `${r.verb}: ${s}`);
  });

  test("refusals say what to do instead", () => {
    assert.equal(refusal(row("STAT"), "authorization"), "not logged in yet: use USER and PASS, or APOP, first");
    assert.equal(refusal(row("RETR"), "user-given"), "not logged in yet: use USER and PASS, or APOP, first");
    assert.equal(refusal(row("PASS"), "authorization"), "send USER first");
    assert.equal(refusal(row("USER"), "transaction"), "already logged in");
    assert.equal(refusal(row("APOP"), "transaction"), "already logged in");
    assert.equal(refusal(row("PASS"), "transaction"), "already logged in");
  });

  test("argument counts", () => {
    assert.deepEqual(splitArgs(row("STAT"), ""), []);
    assert.equal(splitArgs(row("STAT"), "1"), null);
    assert.deepEqual(splitArgs(row("LIST"), ""), []);
    assert.deepEqual(splitArgs(row("LIST"), "2"), ["2"]);
    assert.equal(splitArgs(row("LIST"), "1 2"), null);
    assert.equal(splitArgs(row("RETR"), ""), null);
    assert.deepEqual(splitArgs(row("TOP"), "1  10"), ["1", "10"], "extra spaces are tolerated");
    assert.equal(splitArgs(row("TOP"), "1"), null);
    assert.equal(splitArgs(row("APOP"), "user"), null);
    assert.deepEqual(splitArgs(row("AUTH"), "PLAIN"), ["PLAIN"]);
    assert.deepEqual(splitArgs(row("AUTH"), "PLAIN AGFAAGI="), ["PLAIN", "AGFAAGI="]);
  });

  test("PASS takes the rest of the line, spaces included", () => {
    assert.deepEqual(splitArgs(row("PASS"), "correct horse  battery "), ["correct horse  battery "]);
    assert.equal(splitArgs(row("PASS"), ""), null);
  });

  test("CAPA lists only implemented capabilities", () => {
    const needs: Record<string, string | null> = {
      TOP: "TOP",
      USER: "USER",
      "SASL PLAIN": "AUTH",
      UIDL: "UIDL",
      "RESP-CODES": null,
      "AUTH-RESP-CODE": null,
      PIPELINING: null,
      "EXPIRE NEVER": null,
      "IMPLEMENTATION Petrel": null,
    };
    assert.deepEqual([...CAPABILITIES].sort(), Object.keys(needs).sort());
    for (const verb of Object.values(needs)) if (verb) row(verb);
  });
});
