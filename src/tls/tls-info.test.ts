// Unit tests for describeTls and the Received comment: real loopback handshakes (TLS 1.3 and 1.2) read
// from the server's end, and the key-size table for cipher names OpenSSL may report.
import { test } from "node:test";
import assert from "node:assert/strict";
import tls from "node:tls";
import { generate } from "selfsigned";
import { LoopbackTls } from "../testing/tls-loopback.js";
import { SERVER_TLS_OPTIONS } from "./server-certificates.js";
import { cipherBits, describeTls, receivedTlsComment } from "./tls-info.js";

async function loopback(): Promise<LoopbackTls> {
  const pems = await generate([{ name: "commonName", value: "mail.test" }], { keyType: "ec", algorithm: "sha256" });
  const context = tls.createSecureContext({ ...SERVER_TLS_OPTIONS, cert: pems.cert, key: pems.private });
  return LoopbackTls.start({ context: () => context });
}

test("describeTls reads what the handshake agreed on; the comment reads like Postfix's", async () => {
  const server = await loopback();
  try {
    const cases = [
      [{}, { version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", bits: 256 }, "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))"],
      [{ ciphers: "TLS_CHACHA20_POLY1305_SHA256" }, { version: "TLSv1.3", cipher: "TLS_CHACHA20_POLY1305_SHA256", bits: 256 }, null],
      [{ ciphers: "TLS_AES_128_GCM_SHA256" }, { version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256", bits: 128 }, null],
      [
        { maxVersion: "TLSv1.2", ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256" },
        { version: "TLSv1.2", cipher: "ECDHE-ECDSA-AES128-GCM-SHA256", bits: 128 },
        "(using TLSv1.2 with cipher ECDHE-ECDSA-AES128-GCM-SHA256 (128/128 bits))",
      ],
    ] as const;
    for (const [options, info, comment] of cases) {
      const hs = await server.handshake(options);
      assert.deepEqual(describeTls(hs.server), info);
      if (comment !== null) assert.equal(receivedTlsComment(describeTls(hs.server)), comment);
      hs.client.destroy();
    }
  } finally {
    await server.close();
  }
});

test("cipherBits: IANA and OpenSSL names; an unknown cipher has no bits and the comment leaves them out", () => {
  assert.equal(cipherBits("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"), 256);
  assert.equal(cipherBits("ECDHE-RSA-AES256-GCM-SHA384"), 256);
  assert.equal(cipherBits("DHE-RSA-AES128-SHA256"), 128);
  assert.equal(cipherBits("ECDHE-ECDSA-CHACHA20-POLY1305"), 256);
  assert.equal(cipherBits("ECDHE-ARIA128-GCM-SHA256"), 128);
  assert.equal(cipherBits("SOMETHING-NEW"), 0);
  assert.equal(receivedTlsComment({ version: "TLSv1.3", cipher: "SOMETHING-NEW", bits: 0 }), "(using TLSv1.3 with cipher SOMETHING-NEW)");
});
