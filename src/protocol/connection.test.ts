// Unit tests for Connection: the server side of a TLS upgrade over an in-process loopback socket pair,
// its timeout and failure paths, and the peer address helpers.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import selfsigned from "selfsigned";
import { Connection, TlsHandshakeFailed, isLoopback, normalisePeer, type TlsContextSource } from "./connection.js";

let source: TlsContextSource;
before(async () => {
  const pems = await selfsigned.generate([{ name: "commonName", value: "unit.test" }], { keySize: 2048, algorithm: "sha256" });
  const context = tls.createSecureContext({ cert: pems.cert, key: pems.private, minVersion: "TLSv1.2" });
  source = { context: () => context };
});

const servers: net.Server[] = [];
after(() => servers.forEach((s) => s.close()));

/** A loopback TCP pair: the server-side socket and the client-side one. */
async function pair(): Promise<{ server: net.Socket; client: net.Socket }> {
  const accepted = new Promise<net.Socket>((resolve) => {
    const srv = net.createServer(resolve);
    servers.push(srv);
    srv.listen(0, "127.0.0.1", () => {
      const client = net.connect((srv.address() as net.AddressInfo).port, "127.0.0.1");
      client.on("error", () => undefined);
      pending = client;
    });
  });
  let pending: net.Socket | null = null;
  const server = await accepted;
  server.on("error", () => undefined);
  return { server, client: pending! };
}

test("startTls upgrades the socket and records version and cipher; a second startTls is refused", async () => {
  const { server, client } = await pair();
  const conn = new Connection(server, { listener: "submission", tls: source });
  assert.equal(conn.info.peer, "127.0.0.1");
  assert.equal(conn.info.loopback, true);
  assert.equal(conn.tlsAvailable, true);
  const secureClient = tls.connect({ socket: client, rejectUnauthorized: false });
  secureClient.on("error", () => undefined);
  const upgraded = await conn.startTls();
  assert.notEqual(upgraded, server);
  assert.equal(conn.socket, upgraded);
  assert.equal(conn.secure, true);
  assert.match(conn.info.tls!.version, /^TLSv1\.[23]$/);
  assert.ok([128, 256].includes(conn.info.tls!.bits), JSON.stringify(conn.info.tls));
  // Bytes flow over the new socket.
  const got = new Promise<string>((resolve) => upgraded.once("data", (d: Buffer) => resolve(d.toString())));
  secureClient.write("EHLO x\r\n");
  assert.equal(await got, "EHLO x\r\n");
  await assert.rejects(conn.startTls(), (e: unknown) => e instanceof TlsHandshakeFailed && /already active/.test(e.reason));
  secureClient.destroy();
});

test("a client that does not start its handshake fails after the timeout, and the socket is closed", async () => {
  const { server, client } = await pair();
  const conn = new Connection(server, { listener: "pop3s", tls: source, handshakeTimeoutMs: 150 });
  const t0 = Date.now();
  await assert.rejects(conn.startTls(), (e: unknown) => e instanceof TlsHandshakeFailed && e.reason === "timed out");
  assert.ok(Date.now() - t0 >= 140);
  await new Promise<void>((resolve) => (client.closed ? resolve() : client.once("close", () => resolve())));
  assert.equal(conn.secure, false);
});

test("plaintext instead of a ClientHello fails the handshake; without a certificate there is no TLS", async () => {
  const { server, client } = await pair();
  const conn = new Connection(server, { listener: "smtp", tls: source });
  const handshake = conn.startTls();
  client.write("NOOP\r\nNOOP\r\nNOOP\r\n");
  await assert.rejects(handshake, (e: unknown) => e instanceof TlsHandshakeFailed);
  const plain = await pair();
  const none = new Connection(plain.server, { listener: "smtp" });
  assert.equal(none.tlsAvailable, false);
  await assert.rejects(none.startTls(), (e: unknown) => e instanceof TlsHandshakeFailed && /no certificate/.test(e.reason));
  plain.client.destroy();
});

test("peer addresses: IPv4-mapped IPv6 is written as IPv4; loopback is 127.0.0.0/8 and ::1 only", () => {
  assert.equal(normalisePeer("::ffff:192.0.2.1"), "192.0.2.1");
  assert.equal(normalisePeer(undefined), "unknown");
  assert.equal(isLoopback("127.0.0.1"), true);
  assert.equal(isLoopback("127.255.0.9"), true);
  assert.equal(isLoopback("::1"), true);
  assert.equal(isLoopback("128.0.0.1"), false);
  assert.equal(isLoopback("::ffff:127.0.0.1"), false, "callers normalise first");
  assert.equal(isLoopback("unknown"), false);
});
