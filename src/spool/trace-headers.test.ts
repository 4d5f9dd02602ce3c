// Unit tests for the trace headers: nothing a client sent can break a header line or start a new one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { receivedHeader, returnPathHeader } from "./trace-headers.js";

test("control characters, CR/LF and Unicode line separators in HELO, sender and recipient become '?'", () => {
  const header = receivedHeader(
    { helo: "bad\u0085name\r\nX-Evil: 1", peerAddress: "127.0.0.1", hostname: "mx.test", protocol: "ESMTP", id: "ID1", receivedAt: new Date(0) },
    "rcpt\u2028x@example.test",
  );
  assert.match(header, /^Received: from bad\?name\?\?X-Evil: 1 \(\[127\.0\.0\.1\]\)\r\n\tby mx\.test \(Petrel\) with ESMTP id ID1\r\n\tfor <rcpt\?x@example\.test>;\r\n\t/);
  // Exactly three physical lines, each after the first a continuation.
  const lines = header.split("\r\n").slice(0, -1);
  assert.equal(lines.length, 4);
  for (const l of lines.slice(1)) assert.ok(l.startsWith("\t"), JSON.stringify(l));
  assert.equal(returnPathHeader("a\x00b\x7f@x.test"), "Return-Path: <a?b?@x.test>\r\n");
});

test("TLS and the authenticated user appear as comments before 'by' (RFC 5321 §4.4, RFC 3848), escaped like the rest", () => {
  const base = { helo: "client.test", peerAddress: "192.0.2.7", hostname: "mx.test", id: "ID2", receivedAt: new Date(0) };
  const header = receivedHeader(
    { ...base, protocol: "ESMTPSA", tls: { version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", bits: 256 }, authUser: "alice@example.test\r\nX-Evil: 1" },
    "bob@example.test",
  );
  assert.match(
    header,
    /^Received: from client\.test \(\[192\.0\.2\.7\]\)\r\n\t\(using TLSv1\.3 with cipher TLS_AES_256_GCM_SHA384 \(256\/256 bits\)\)\r\n\t\(Authenticated sender: alice@example\.test\?\?X-Evil: 1\)\r\n\tby mx\.test \(Petrel\) with ESMTPSA id ID2\r\n\tfor <bob@example\.test>;\r\n\t/,
  );
  // Without TLS and user, the header is the plain one.
  assert.doesNotMatch(receivedHeader({ ...base, protocol: "ESMTP", tls: null, authUser: null }, null), /using|Authenticated/);
});

test("the client as Sendmail's $_ names it: confirmed PTR name, (may be forged) when it does not resolve back, unknown without one", () => {
  const base = { helo: "helo.test", peerAddress: "192.0.2.7", hostname: "mx.test", protocol: "ESMTP", id: "ID3", receivedAt: new Date(0) };
  const first = (client?: Parameters<typeof receivedHeader>[0]["client"]) => receivedHeader({ ...base, ...(client ? { client } : {}) }, null).split("\r\n")[0];
  assert.equal(first({ kind: "confirmed", name: "mail.client.test" }), "Received: from helo.test (mail.client.test [192.0.2.7])");
  assert.equal(first({ kind: "unconfirmed", name: "liar.test" }), "Received: from helo.test (liar.test [192.0.2.7] (may be forged))");
  assert.equal(first({ kind: "none" }), "Received: from helo.test (unknown [192.0.2.7])");
  assert.equal(first({ kind: "unconfirmed", name: "x\r\nX-Evil: 1" }), "Received: from helo.test (x??X-Evil: 1 [192.0.2.7] (may be forged))");
  assert.equal(first(), "Received: from helo.test ([192.0.2.7])", "local mail and bounces: no lookup, no name");
  assert.equal(receivedHeader({ ...base, peerAddress: "2001:db8::1", client: { kind: "none" } }, null).split("\r\n")[0], "Received: from helo.test (unknown [IPv6:2001:db8::1])");
});
