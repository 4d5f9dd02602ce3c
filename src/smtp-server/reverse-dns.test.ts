// Unit tests of the client's forward-confirmed reverse DNS against the loopback DNS server: a PTR name
// that resolves back (IPv4 and IPv6), one that does not, none, a garbage name, and a server too slow to wait for.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startDnsServer, type DnsServer } from "../testing/dns-server.js";
import { ReverseDns } from "./reverse-dns.js";

let dns: DnsServer;
let rdns: ReverseDns;

before(async () => {
  dns = await startDnsServer({
    "7.2.0.192.in-addr.arpa": { PTR: ["Mail.Client.Test."] },
    "mail.client.test": { A: ["192.0.2.99", "192.0.2.7"] },
    "8.2.0.192.in-addr.arpa": { PTR: ["liar.test"] },
    "liar.test": { A: ["198.51.100.1"] },
    "9.2.0.192.in-addr.arpa": { PTR: ["first.test", "second.test"] },
    "first.test": { rcode: "NXDOMAIN" },
    "second.test": { A: ["192.0.2.9"] },
    "10.2.0.192.in-addr.arpa": { PTR: ["bad_name-.test"] },
    "11.2.0.192.in-addr.arpa": { PTR: ["slow.test"] },
    "slow.test": { A: ["192.0.2.11"], delayMs: 3000 },
    "12.2.0.192.in-addr.arpa": { delayMs: 3000, PTR: ["never.test"] },
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa": { PTR: ["v6.client.test"] },
    "v6.client.test": { AAAA: ["2001:db8:0:0::1"] },
  });
  rdns = new ReverseDns({ servers: [`127.0.0.1:${dns.port}`], timeoutMs: 400, queryTimeoutMs: 150, tries: 1 });
});
after(() => dns.close());

test("a PTR name whose A records contain the IP is confirmed (lower case, no final dot)", async () => {
  assert.deepEqual(await rdns.lookup("192.0.2.7"), { kind: "confirmed", name: "mail.client.test" });
});

test("IPv6: the ip6.arpa name, AAAA back, addresses compared as addresses", async () => {
  assert.deepEqual(await rdns.lookup("2001:db8::1"), { kind: "confirmed", name: "v6.client.test" });
});

test("a PTR name that does not resolve back is unconfirmed; of several, the one that does is confirmed", async () => {
  assert.deepEqual(await rdns.lookup("192.0.2.8"), { kind: "unconfirmed", name: "liar.test" });
  assert.deepEqual(await rdns.lookup("192.0.2.9"), { kind: "confirmed", name: "second.test" });
});

test("no PTR, a PTR that is no host name, and not an IP at all: none", async () => {
  assert.deepEqual(await rdns.lookup("192.0.2.200"), { kind: "none" });
  assert.deepEqual(await rdns.lookup("192.0.2.10"), { kind: "none" });
  assert.deepEqual(await rdns.lookup("unknown"), { kind: "none" });
});

test("a slow DNS server: the check gives up after timeoutMs (none), whether the PTR or the forward lookup hangs", async () => {
  const patient = new ReverseDns({ servers: [`127.0.0.1:${dns.port}`], timeoutMs: 300, queryTimeoutMs: 2000, tries: 1 });
  for (const ip of ["192.0.2.12", "192.0.2.11"]) {
    const started = Date.now();
    assert.deepEqual(await patient.lookup(ip), { kind: "none" });
    const took = Date.now() - started;
    assert.ok(took >= 250 && took < 1500, `${ip}: ${took} ms`);
  }
});

test("a forward lookup that fails (here: the resolver's own timeout first) leaves the PTR name unconfirmed", async () => {
  assert.deepEqual(await rdns.lookup("192.0.2.11"), { kind: "unconfirmed", name: "slow.test" });
});

test("reverse-mapping names: in-addr.arpa and ip6.arpa nibbles (compressed and IPv4-tailed forms)", async () => {
  const { arpaName } = await import("./reverse-dns.js");
  assert.equal(arpaName("192.0.2.7", "ipv4"), "7.2.0.192.in-addr.arpa");
  assert.equal(arpaName("2001:db8::1", "ipv6"), "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  assert.equal(arpaName("::ffff:192.0.2.1", "ipv6"), "1.0.2.0.0.0.0.c.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa");
  assert.equal(arpaName("::1", "ipv6"), "1." + "0.".repeat(31) + "ip6.arpa");
});

test("answers are shared: concurrent and repeated lookups of one IP ask DNS once for 5 minutes; a 'none' is asked again", async () => {
  let now = 1_000_000;
  const cached = new ReverseDns({ servers: [`127.0.0.1:${dns.port}`], timeoutMs: 400, queryTimeoutMs: 150, tries: 1 }, undefined, () => now);
  const ptrQueries = () => dns.queries.filter((q) => q.name === "7.2.0.192.in-addr.arpa" && q.type === "PTR").length;
  const before = ptrQueries();
  const answers = await Promise.all([cached.lookup("192.0.2.7"), cached.lookup("192.0.2.7"), cached.lookup("192.0.2.7")]);
  assert.deepEqual(answers, Array(3).fill({ kind: "confirmed", name: "mail.client.test" }));
  assert.equal(await cached.lookup("192.0.2.7").then((a) => a.kind), "confirmed");
  assert.equal(ptrQueries() - before, 1, "one PTR query for four lookups");
  now += 5 * 60_000 + 1;
  await cached.lookup("192.0.2.7");
  assert.equal(ptrQueries() - before, 2, "asked again once the answer is 5 minutes old");
  const noneBefore = dns.queries.filter((q) => q.name === "10.2.0.192.in-addr.arpa").length;
  await cached.lookup("192.0.2.10");
  await cached.lookup("192.0.2.10");
  assert.equal(dns.queries.filter((q) => q.name === "10.2.0.192.in-addr.arpa").length - noneBefore, 2, "a 'none' is not kept");
});
