// A loopback TLS server for unit tests: TCP on 127.0.0.1 port 0, each socket upgraded with
// `new tls.TLSSocket(socket, { isServer: true, secureContext: source.context() })` as STARTTLS and the
// implicit-TLS ports do, so every handshake asks the source again. Trusts nothing the client sends.
import net from "node:net";
import tls from "node:tls";
import type { TlsContextSource } from "../tls/server-certificates.js";

export interface TlsHandshake {
  readonly client: tls.TLSSocket;
  /** The server's end, after its handshake finished. */
  readonly server: tls.TLSSocket;
  /** SHA-256 fingerprints of the certificates the server sent, its own first. */
  readonly chain: readonly string[];
}

export class LoopbackTls {
  private readonly waiting: ((s: tls.TLSSocket) => void)[] = [];
  private readonly secured: tls.TLSSocket[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server) {}

  static async start(source: TlsContextSource): Promise<LoopbackTls> {
    const server = net.createServer();
    const loopback = new LoopbackTls(server);
    server.on("connection", (raw) => {
      loopback.sockets.add(raw);
      raw.on("close", () => loopback.sockets.delete(raw));
      const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: source.context() });
      secure.on("error", () => undefined); // a refused handshake shows on the client's side
      secure.on("secure", () => {
        const wake = loopback.waiting.shift();
        if (wake) wake(secure);
        else loopback.secured.push(secure);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return loopback;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Connects a client (no verification unless options ask for it) and waits for both ends' handshake. */
  async handshake(options: tls.ConnectionOptions = {}): Promise<TlsHandshake> {
    const client = tls.connect({ host: "127.0.0.1", port: this.port, servername: "mail.test", rejectUnauthorized: false, ...options });
    await new Promise<void>((resolve, reject) => {
      client.once("secureConnect", resolve);
      client.once("error", reject);
    });
    const server = await new Promise<tls.TLSSocket>((resolve) => {
      const ready = this.secured.shift();
      if (ready) resolve(ready);
      else this.waiting.push(resolve);
    });
    return { client, server, chain: chainOf(client.getPeerCertificate(true)) };
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function chainOf(cert: tls.DetailedPeerCertificate): string[] {
  const chain: string[] = [];
  const seen = new Set<tls.DetailedPeerCertificate>();
  // A self-signed certificate is its own issuer; Node links the sent chain through issuerCertificate.
  for (let c: tls.DetailedPeerCertificate | undefined = cert; c?.fingerprint256 && !seen.has(c); c = c.issuerCertificate) {
    seen.add(c);
    chain.push(c.fingerprint256);
  }
  return chain;
}
