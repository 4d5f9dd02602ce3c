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
