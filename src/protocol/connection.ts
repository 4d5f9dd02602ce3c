// One client connection, whatever the protocol: who the peer is, which listener took it, whether TLS is
// up and who has authenticated. Sessions learn all of that here and nowhere else. startTls() turns the
// plaintext socket into a TLS one (STARTTLS, STLS, or at once on an implicit-TLS port), bounded by a
// handshake timeout; a failed handshake ends the connection. Trusts the TLS context it is given.
import net, { type Socket } from "node:net";
import tls from "node:tls";
import { describeTls, type TlsInfo } from "../tls/tls-info.js";

/** Where the certificate for the next handshake comes from (tls/server-certificates.ts). */
export interface TlsContextSource {
  context(): tls.SecureContext;
}

/** The TLS parameters a session reports (Received comments, logs). */
export type TlsState = TlsInfo;

export interface ConnectionInfo {
  /** The client's IP address, IPv4-mapped IPv6 written as plain IPv4. */
  readonly peer: string;
  /** The listener's name from [listen]: smtp, submission, submissions, pop3, pop3s. */
  readonly listener: string;
  /** The peer is on this machine (127.0.0.0/8 or ::1). */
  readonly loopback: boolean;
  tls: TlsState | null;
  /** The authenticated account, once a login succeeded. */
  auth: string | null;
}

export interface ConnectionOptions {
  readonly listener: string;
  /** Null: this listener has no certificate, so STARTTLS/STLS are not offered. */
  readonly tls?: TlsContextSource | null;
  readonly handshakeTimeoutMs?: number;
}

/** The handshake did not complete: the client left, timed out or spoke something else. */
export class TlsHandshakeFailed extends Error {
  constructor(
    readonly reason: string,
    readonly code?: string,
  ) {
    super(`TLS handshake failed: ${reason}`);
  }
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;

export function normalisePeer(address: string | undefined): string {
  return (address ?? "unknown").replace(/^::ffff:/i, "");
}

export function isLoopback(ip: string): boolean {
  return ip === "::1" || (net.isIPv4(ip) && ip.startsWith("127."));
}

export class Connection {
  private current: Socket;
  readonly info: ConnectionInfo;

  constructor(
    socket: Socket,
    private readonly opts: ConnectionOptions,
  ) {
    this.current = socket;
    const peer = normalisePeer(socket.remoteAddress);
    this.info = { peer, listener: opts.listener, loopback: isLoopback(peer), tls: null, auth: null };
  }

  /** The socket to read and write now: the TLS socket once TLS is up. */
  get socket(): Socket {
    return this.current;
  }

  /** A certificate is configured, so TLS can be started. */
  get tlsAvailable(): boolean {
    return !!this.opts.tls;
  }

  get secure(): boolean {
    return this.info.tls !== null;
  }

  /**
   * Runs the server side of a TLS handshake over the current socket and switches to the TLS socket.
   * The caller detaches its reader first: plaintext it had buffered is not passed on (RFC 3207 §4.2,
   * CVE-2011-0411); what the kernel still holds belongs to the handshake. Throws TlsHandshakeFailed.
   */
  async startTls(): Promise<Socket> {
    const source = this.opts.tls;
    if (!source) throw new TlsHandshakeFailed("no certificate configured");
    if (this.info.tls) throw new TlsHandshakeFailed("TLS is already active");
    const raw = this.current;
    raw.setTimeout(0);
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: source.context() });
    secure.on("error", () => undefined); // a failed handshake is reported below; later errors through the reader
    await new Promise<void>((resolve, reject) => {
      const fail = (reason: string, code?: string) => {
        clearTimeout(timer);
        secure.off("secure", onSecure);
        secure.destroy();
        raw.destroy();
        reject(new TlsHandshakeFailed(reason, code));
      };
      const onSecure = () => {
        clearTimeout(timer);
        secure.off("error", onError).off("close", onClose);
        resolve();
      };
      const onError = (err: NodeJS.ErrnoException) => fail(err.message, err.code);
      const onClose = () => fail("the client closed the connection");
      const timer = setTimeout(() => fail("timed out"), this.opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS);
      secure.once("secure", onSecure).once("error", onError).once("close", onClose);
    });
    // TLS 1.2 renegotiation is a denial-of-service lever and nothing Petrel needs (TLS 1.3 has none).
    secure.disableRenegotiation();
    secure.setNoDelay(true);
    this.current = secure;
    this.info.tls = describeTls(secure);
    return secure;
  }
}
