// Moves a session from plaintext to TLS once it has queued its "go ahead" reply to STARTTLS (RFC 3207
// §4.2) or STLS (RFC 2595 §4): writes that reply, throws away whatever the client pipelined after the
// command (CVE-2011-0411), runs the handshake and puts the reader and the reply queue on the TLS socket.
// Shared by SMTP and POP3 (and IMAP later); trusts the Connection's TLS context, nothing from the client.
import type { Logger } from "../core/log.js";
import { TlsHandshakeFailed, type Connection, type TlsState } from "./connection.js";
import type { ReplyQueue } from "./reply-queue.js";
import type { SocketReader } from "./socket-reader.js";

/** "failed": the handshake did not complete, it was logged and the connection is gone. */
export type TlsUpgrade = { readonly kind: "secure"; readonly tls: TlsState } | { readonly kind: "failed" };

/**
 * Flushes the queued replies, drops buffered plaintext, runs the handshake and re-attaches reader and
 * replies. Logs "TLS started" or "TLS handshake failed", each with the peer and the given context.
 */
export async function upgradeToTls(
  conn: Connection,
  reader: SocketReader,
  replies: ReplyQueue,
  log: Logger,
  context: Record<string, unknown> = {},
): Promise<TlsUpgrade> {
  replies.flush();
  const discarded = reader.buffered;
  reader.detach();
  try {
    const secure = await conn.startTls();
    reader.attach(secure);
    replies.attach(secure);
  } catch (err) {
    const reason = err instanceof TlsHandshakeFailed ? err.reason : String(err);
    log.info({ peer: conn.info.peer, ...context, reason, code: err instanceof TlsHandshakeFailed ? err.code : undefined }, "TLS handshake failed");
    replies.discard();
    return { kind: "failed" };
  }
  const t = conn.info.tls!;
  log.info({ peer: conn.info.peer, ...context, tls: t.version, cipher: t.cipher, ...(discarded ? { discarded_plaintext: discarded } : {}) }, "TLS started");
  return { kind: "secure", tls: t };
}
