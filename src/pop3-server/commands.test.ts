// Unit tests of the POP3 command table: which verbs each state allows (RFC 1939 §4-§7), the refusal
// texts, argument counts, the plaintext-login rule (RFC 2595 §2.3), and that CAPA (RFC 2449 §6) names
// only what the table implements and the connection may use (STLS before TLS only, RFC 2595 §4).
// The session's behaviour on the wire is tested in session.test.ts.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ConnectionInfo } from "../protocol/connection.js";
import { COMMANDS, STATES, capabilities, plaintextLoginAllowed, refusal, splitArgs, type CommandRow, type Pop3Connection, type Pop3State } from "./commands.js";

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
    assert.deepEqual(allowed("authorization"), ["APOP", "AUTH", "CAPA", "QUIT", "STLS", "USER"]);
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
    assert.equal(refusal(row("STLS"), "user-given"), "STLS must come before USER");
    assert.equal(refusal(row("STLS"), "transaction"), "STLS is only allowed before login");
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

  test("only USER, PASS and AUTH are plaintext logins (APOP sends a digest)", () => {
    const flagged = [...COMMANDS.values()].filter((r) => r.plaintextLogin).map((r) => r.verb).sort();
    assert.deepEqual(flagged, ["AUTH", "PASS", "USER"]);
  });

  test("plaintext login: always over TLS; without it by pop3.plaintext_login and the peer", () => {
    for (const loopback of [true, false]) {
      assert.equal(plaintextLoginAllowed(conn({ loopback, secure: true }), { plaintextLogin: "never" }), true, "TLS makes every mode allow it");
      assert.equal(plaintextLoginAllowed(conn({ loopback }), { plaintextLogin: "always" }), true);
      assert.equal(plaintextLoginAllowed(conn({ loopback }), { plaintextLogin: "never" }), false);
      assert.equal(plaintextLoginAllowed(conn({ loopback }), { plaintextLogin: "loopback" }), loopback);
      assert.equal(plaintextLoginAllowed(conn({ loopback }), {}), loopback, "the default is loopback");
    }
  });

  test("CAPA: STLS only before TLS with a certificate; USER and SASL PLAIN only where a password may be sent", () => {
    const tail = ["UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "IMPLEMENTATION Petrel"];
    const remote = { loopback: false };
    assert.deepEqual(capabilities(conn({ ...remote, tlsAvailable: true }), {}), ["TOP", "STLS", ...tail]);
    assert.deepEqual(capabilities(conn({ ...remote, tlsAvailable: true, secure: true }), {}), ["TOP", "USER", "SASL PLAIN", ...tail]);
    assert.deepEqual(capabilities(conn({ ...remote, tlsAvailable: false }), {}), ["TOP", ...tail]);
    assert.deepEqual(capabilities(conn({ loopback: true, tlsAvailable: true }), {}), ["TOP", "USER", "SASL PLAIN", "STLS", ...tail]);
    assert.deepEqual(capabilities(conn({ loopback: true, tlsAvailable: true }), { plaintextLogin: "never" }), ["TOP", "STLS", ...tail]);
    assert.deepEqual(capabilities(conn({ ...remote }), { plaintextLogin: "always" }), ["TOP", "USER", "SASL PLAIN", ...tail]);
  });

  test("CAPA lists only implemented capabilities", () => {
    const needs: Record<string, string | null> = {
      TOP: "TOP",
      USER: "USER",
      "SASL PLAIN": "AUTH",
      STLS: "STLS",
      UIDL: "UIDL",
      "RESP-CODES": null,
      "AUTH-RESP-CODE": null,
      PIPELINING: null,
      "EXPIRE NEVER": null,
      "IMPLEMENTATION Petrel": null,
    };
    const most = capabilities(conn({ loopback: true, tlsAvailable: true }), { plaintextLogin: "always" });
    assert.deepEqual([...most].sort(), Object.keys(needs).sort());
    for (const verb of Object.values(needs)) if (verb) row(verb);
  });
});

/** A connection as capabilities() sees it, without a socket. */
function conn(o: { loopback: boolean; secure?: boolean; tlsAvailable?: boolean }): Pop3Connection {
  const info: ConnectionInfo = {
    peer: o.loopback ? "127.0.0.1" : "192.0.2.7",
    listener: "pop3",
    loopback: o.loopback,
    tls: o.secure ? { version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", bits: 256 } : null,
    auth: null,
  };
  return { info, secure: o.secure ?? false, tlsAvailable: o.tlsAvailable ?? o.secure ?? false };
}
