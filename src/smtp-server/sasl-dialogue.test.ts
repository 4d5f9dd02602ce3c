// Unit tests for the SMTP AUTH dialogue: the 334 lines it sends and what it returns, with scripted
// client lines (no sockets, no accounts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatReply, type Reply } from "../core/reply.js";
import { saslDialogue, type SaslLines } from "./sasl-dialogue.js";

const b64 = (s: string) => Buffer.from(s).toString("base64");

function script(...lines: (string | "too-long" | null)[]): { io: SaslLines; sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    io: {
      send: (r: Reply) => void sent.push(formatReply(r)),
      readLine: async () => {
        const l = lines.shift();
        return l === undefined || l === null ? null : l === "too-long" ? "too-long" : Buffer.from(l, "latin1");
      },
    },
  };
}

test("LOGIN asks Username: and Password: as base64 334 lines and returns the credentials", async () => {
  const { io, sent } = script(b64("alice@x"), b64("secret"));
  assert.deepEqual(await saslDialogue("LOGIN", io), { kind: "credentials", method: "LOGIN", user: "alice@x", password: "secret" });
  assert.deepEqual(sent, [`334 ${b64("Username:")}\r\n`, `334 ${b64("Password:")}\r\n`]);
});

test("PLAIN with an initial response sends nothing; without one, an empty 334", async () => {
  const quick = script();
  assert.deepEqual(await saslDialogue(`plain ${b64("\0alice@x\0pw")}`, quick.io), { kind: "credentials", method: "PLAIN", user: "alice@x", password: "pw" });
  assert.deepEqual(quick.sent, []);
  const slow = script(b64("\0alice@x\0pw"));
  assert.equal((await saslDialogue("PLAIN", slow.io)).kind, "credentials");
  assert.deepEqual(slow.sent, ["334 \r\n"]);
});

test("refusals: syntax 501 5.5.4, unknown mechanism 504, '*' 501 5.0.0, bad base64 and over-long lines 501 5.5.2; another identity; a vanished client", async () => {
  const text = async (arg: string, ...lines: (string | "too-long" | null)[]) => {
    const o = await saslDialogue(arg, script(...lines).io);
    return o.kind === "refused" ? formatReply(o.reply) : o.kind;
  };
  assert.equal(await text(""), "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n");
  assert.equal(await text("PLAIN a b"), "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n");
  assert.match(await text("CRAM-MD5"), /^504 5\.5\.4 Unrecognized authentication type: CRAM-MD5\r\n$/);
  assert.equal(await text("LOGIN", "*"), "501 5.0.0 Authentication cancelled\r\n");
  assert.match(await text("PLAIN", "YWxp Y2U="), /^501 5\.5\.2 /);
  assert.match(await text("PLAIN", "too-long"), /^501 5\.5\.2 Error: response too long/);
  assert.equal(await text(`PLAIN ${b64("bob@x\0alice@x\0pw")}`), "identity-refused");
  assert.equal(await text("LOGIN", null), "closed");
});
