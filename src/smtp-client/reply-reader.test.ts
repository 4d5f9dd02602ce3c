// Unit tests for the client's small codecs: EHLO keywords, RFC 3461 xtext, SASL mechanism choice and
// encodings, and how a reply decides a recipient's fate.
import { test } from "node:test";
import assert from "node:assert/strict";
import { reply } from "../core/reply.js";
import { parseExtensions, xtext } from "./reply-reader.js";
import { chooseMechanism, loginSteps, plainCommand } from "./sasl-client.js";
import { classify } from "./smtp-client-connection.js";

test("EHLO keywords: upper-cased, parameters kept, the greeting line skipped, AUTH=LOGIN spelling accepted", () => {
  const ext = parseExtensions(reply(250, undefined, "mx.test hello", "pipelining", "SIZE 1000", "AUTH PLAIN LOGIN", "AUTH=LOGIN", "8BITMIME"));
  assert.deepEqual([...ext], [["PIPELINING", ""], ["SIZE", "1000"], ["AUTH", "LOGIN"], ["8BITMIME", ""]]);
});

test("xtext: printable ASCII kept, +, =, space, controls and UTF-8 bytes as +HH", () => {
  assert.equal(xtext("a+b=c d\r\u00e9"), "a+2Bb+3Dc+20d+0D+C3+A9");
});

test("SASL: PLAIN preferred, LOGIN when alone, none otherwise; PLAIN has an empty authzid", () => {
  assert.equal(chooseMechanism("LOGIN PLAIN CRAM-MD5"), "PLAIN");
  assert.equal(chooseMechanism("login"), "LOGIN");
  assert.equal(chooseMechanism("CRAM-MD5 XOAUTH2"), null);
  assert.equal(Buffer.from(plainCommand("bob", "p\u00e4ss").slice(11), "base64").toString("utf8"), "\0bob\0p\u00e4ss");
  assert.deepEqual(loginSteps("bob", "pw"), ["AUTH LOGIN", "Ym9i", "cHc="]);
});

test("classify: 2xx sent, 5xx bounced, 4xx and anything odd deferred", () => {
  assert.deepEqual([250, 251, 451, 550, 354].map((c) => classify(reply(c, undefined, "x"))), ["sent", "sent", "deferred", "bounced", "deferred"]);
});
