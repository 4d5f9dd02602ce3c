// What a finished TLS handshake agreed on (protocol version, cipher, its strength) and the comment the
// Received header carries for it, in Postfix's words (RFC 5321 §4.4 allows a comment there; RFC 3848 for
// "with ESMTPS"). Trusts only what OpenSSL reports for the socket; the names are OpenSSL's, like Postfix's.
import type tls from "node:tls";

export interface TlsInfo {
  /** "TLSv1.3", "TLSv1.2". */
  readonly version: string;
  /** OpenSSL's cipher name: "TLS_AES_256_GCM_SHA384", "ECDHE-RSA-AES128-GCM-SHA256". */
  readonly cipher: string;
  /** Symmetric key bits; 0 when the cipher is not one Petrel knows (the comment then leaves them out). */
  readonly bits: number;
}

export function describeTls(socket: tls.TLSSocket): TlsInfo {
  const cipher = socket.getCipher();
  return { version: socket.getProtocol() ?? "unknown", cipher: cipher.name, bits: cipherBits(cipher.standardName ?? cipher.name) };
}

/** Like Postfix: "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))". */
export function receivedTlsComment(info: TlsInfo): string {
  const bits = info.bits > 0 ? ` (${info.bits}/${info.bits} bits)` : "";
  return `(using ${info.version} with cipher ${info.cipher}${bits})`;
}

/** Node does not expose SSL_CIPHER_get_bits; the bulk cipher's key size is in its name (IANA or OpenSSL). */
const BITS: readonly (readonly [RegExp, number])[] = [
  [/CHACHA20/, 256],
  [/(?:AES|ARIA|CAMELLIA)_?256/, 256],
  [/(?:AES|ARIA|CAMELLIA)_?128/, 128],
];

export function cipherBits(name: string): number {
  return BITS.find(([pattern]) => pattern.test(name))?.[1] ?? 0;
}
