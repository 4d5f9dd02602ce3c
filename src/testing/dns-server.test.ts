// Unit tests of the loopback DNS server for tests, asked through Node's own resolver (c-ares), which is
// what the MX router uses: every record type, rcodes, CNAME chains, truncation to TCP, delays, names' case.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import dgram from "node:dgram";
import net from "node:net";
import { Resolver } from "node:dns/promises";
import { startDnsServer, type DnsServer } from "./dns-server.js";

let dns: DnsServer;
let resolver: Resolver;

before(async () => {
  dns = await startDnsServer({
    "example.test": {
      MX: [[10, "mx1.example.test"], [20, "MX2.Example.Test."]],
      A: ["192.0.2.1"],
      AAAA: ["2001:db8::1", "::ffff:192.0.2.9"],
      TXT: ["v=spf1 -all", "k".repeat(300)],
    },
    "null.test": { MX: [[0, "."]] },
    "alias.test": { CNAME: "example.test" },
    "chain.test": { CNAME: "alias.test" },
    "away.test": { CNAME: "missing.test" },
    "loop1.test": { CNAME: "loop2.test" },
    "loop2.test": { CNAME: "loop1.test" },
    "mx1.example.test": { A: ["127.0.0.2"] },
    "broken.test": { rcode: "SERVFAIL", MX: [[10, "mx1.example.test"]] },
    "gone.test": { rcode: "NXDOMAIN" },
    "slow.test": { delayMs: 2000, A: ["192.0.2.3"] },
    "1.2.0.192.in-addr.arpa": { PTR: ["mail.example.test"] },
    "many.test": { A: Array.from({ length: 60 }, (_, i) => `10.0.0.${i + 1}`) },
  });
  resolver = new Resolver({ timeout: 150, tries: 1 });
  resolver.setServers([`127.0.0.1:${dns.port}`]);
});

after(() => dns.close());

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "resolved";
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? "no code";
  }
}

/** resolveMx's answers without Node 24's extra `type` field (Node 22 has none). */
async function mx(name: string): Promise<{ exchange: string; priority: number }[]> {
  return (await resolver.resolveMx(name)).map(({ exchange, priority }) => ({ exchange, priority }));
}

test("MX records in the zone's order, names lowercased and without the final dot", async () => {
  assert.deepEqual(await mx("example.test"), [
    { exchange: "mx1.example.test", priority: 10 },
    { exchange: "mx2.example.test", priority: 20 },
  ]);
});

test("names are case-insensitive, and the query log records each question", async () => {
  const before = dns.queries.length;
  assert.deepEqual(await resolver.resolve4("EXAMPLE.Test"), ["192.0.2.1"]);
  assert.deepEqual(dns.queries.slice(before), [{ name: "example.test", type: "A" }]);
});

test("A, AAAA (including an IPv4-mapped address), TXT split into 255-byte strings, PTR", async () => {
  assert.deepEqual(await resolver.resolve4("example.test"), ["192.0.2.1"]);
  assert.deepEqual(await resolver.resolve6("example.test"), ["2001:db8::1", "::ffff:192.0.2.9"]);
  assert.deepEqual(await resolver.resolveTxt("example.test"), [["v=spf1 -all"], ["k".repeat(255), "k".repeat(45)]]);
  assert.deepEqual(await resolver.reverse("192.0.2.1"), ["mail.example.test"]);
});

test("null MX (RFC 7505) reaches c-ares as one MX with an empty exchange", async () => {
  assert.deepEqual(await mx("null.test"), [{ exchange: "", priority: 0 }]);
});

test("a CNAME answer carries the target's records for the asked type, through chains", async () => {
  assert.deepEqual(await resolver.resolveMx("alias.test"), await resolver.resolveMx("example.test"));
  assert.deepEqual(await resolver.resolve4("chain.test"), ["192.0.2.1"]);
  assert.deepEqual(await resolver.resolveCname("alias.test"), ["example.test"]);
});

test("a CNAME to a name outside the zone is NXDOMAIN, as a resolver reports it; a CNAME loop is SERVFAIL", async () => {
  assert.equal(await code(resolver.resolve4("away.test")), "ENOTFOUND");
  assert.deepEqual(await resolver.resolveCname("away.test"), ["missing.test"]);
  assert.equal(await code(resolver.resolve4("loop1.test")), "ESERVFAIL");
});

test("a name in the zone without the type is NODATA; an unknown name and a forced one are NXDOMAIN", async () => {
  assert.equal(await code(resolver.resolveMx("mx1.example.test")), "ENODATA");
  assert.equal(await code(resolver.resolveMx("nowhere.test")), "ENOTFOUND");
  assert.equal(await code(resolver.resolve4("gone.test")), "ENOTFOUND");
});

test("a forced SERVFAIL hides the records", async () => {
  assert.equal(await code(resolver.resolveMx("broken.test")), "ESERVFAIL");
});

test("a delayed name times out in the client; the server still answers later ones at once", async () => {
  const started = Date.now();
  assert.equal(await code(resolver.resolve4("slow.test")), "ETIMEOUT");
  assert.ok(Date.now() - started < 1500, `timed out after ${Date.now() - started} ms`);
  assert.deepEqual(await resolver.resolve4("example.test"), ["192.0.2.1"]);
});

test("an answer too long for UDP is truncated (TC) and the resolver retries over TCP", async () => {
  const before = dns.queries.length;
  const addresses = await resolver.resolve4("many.test");
  assert.equal(addresses.length, 60);
  assert.deepEqual(dns.queries.slice(before), [
    { name: "many.test", type: "A" },
    { name: "many.test", type: "A" },
  ]);
});

test("TCP answers queries with the two-byte length prefix, several on one connection", async () => {
  const query = (id: number, name: string): Buffer => {
    const labels = name.split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
    const body = Buffer.concat([Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 15, 0, 1])]);
    return Buffer.concat([Buffer.from([body.length >> 8, body.length & 255]), body]);
  };
  const socket = net.connect(dns.port, "127.0.0.1");
  socket.write(Buffer.concat([query(7, "example.test"), query(8, "nowhere.test")]));
  const got: Buffer[] = [];
  await new Promise<void>((resolve) => {
    socket.on("data", (c: Buffer) => {
      got.push(c);
      const all = Buffer.concat(got);
      const first = 2 + all.readUInt16BE(0);
      if (all.length >= first + 2 && all.length >= first + 2 + all.readUInt16BE(first)) resolve();
    });
  });
  socket.destroy();
  const all = Buffer.concat(got);
  const first = all.subarray(2, 2 + all.readUInt16BE(0));
  const second = all.subarray(4 + first.length);
  assert.equal(first.readUInt16BE(0), 7);
  assert.equal(first[3]! & 0x0f, 0);
  assert.equal(first.readUInt16BE(6), 2, "two MX answers");
  assert.equal(second.readUInt16BE(0), 8);
  assert.equal(second[3]! & 0x0f, 3, "NXDOMAIN");
});

test("a malformed query gets FORMERR; a datagram shorter than a header is dropped", async () => {
  const client = dgram.createSocket("udp4");
  const reply = new Promise<Buffer>((resolve) => client.once("message", resolve));
  client.send(Buffer.from([0, 1, 2, 3]), dns.port, "127.0.0.1");
  client.send(Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 200, 1, 2]), dns.port, "127.0.0.1");
  const msg = await reply;
  client.close();
  assert.equal(msg.readUInt16BE(0), 0x1234);
  assert.equal(msg[3]! & 0x0f, 1, "FORMERR");
});

test("setZone replaces the answers at once", async () => {
  const other = await startDnsServer({ "swap.test": { A: ["192.0.2.10"] } });
  try {
    const r = new Resolver({ timeout: 150, tries: 1 });
    r.setServers([`127.0.0.1:${other.port}`]);
    assert.deepEqual(await r.resolve4("swap.test"), ["192.0.2.10"]);
    other.setZone({ "swap.test": { A: ["192.0.2.11"] } });
    assert.deepEqual(await r.resolve4("swap.test"), ["192.0.2.11"]);
  } finally {
    await other.close();
  }
});

test("after close the port refuses (ECONNREFUSED), and pending delayed answers are dropped", async () => {
  const other = await startDnsServer({ "slow.test": { delayMs: 5000, A: ["192.0.2.3"] } });
  const r = new Resolver({ timeout: 150, tries: 1 });
  r.setServers([`127.0.0.1:${other.port}`]);
  const pending = code(r.resolve4("slow.test"));
  await new Promise((res) => setTimeout(res, 50));
  await other.close();
  assert.equal(await pending, "ETIMEOUT");
  assert.equal(await code(r.resolve4("slow.test")), "ECONNREFUSED");
});
