// Unit tests of the DNSBL/DNSWL screen (RFC 5782) against the loopback DNS server, through Node's real
// resolver: listed with and without a TXT reason, not listed, allowlisted, IPv6 nibble keys, timeouts and
// error answers counted as not listed, exempt networks never looked up, hostile TXT text made safe, the
// per-client answer cache.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { networkList } from "../config/schema.js";
import { silentLogger } from "../core/log.js";
import { startDnsServer, type DnsServer } from "../testing/dns-server.js";
import { Dnsbl, SCREEN_CACHE_MS, expandIpv6, reversedName, type DnsblOptions } from "./dnsbl.js";

let dns: DnsServer;
before(async () => {
  dns = await startDnsServer({
    "2.0.0.127.bl.test": { A: ["127.0.0.2"], TXT: ["Listed for testing, see https://bl.test/q?ip=127.0.0.2"] },
    "7.2.0.192.bl.test": { A: ["127.0.0.4"] },
    "8.2.0.192.bl.test": { A: ["127.0.0.3"], TXT: ["evil\r\n250 ok\u00e9 " + "y".repeat(400)] },
    "8.2.0.192.other.test": { A: ["127.0.0.10"], TXT: ["second list"] },
    "9.2.0.192.bl.test": { A: ["127.255.255.254"] },
    "10.2.0.192.bl.test": { A: ["198.51.100.1"] },
    "11.2.0.192.bl.test": { A: ["127.0.0.2"], delayMs: 3000 },
    "12.2.0.192.bl.test": { rcode: "SERVFAIL" },
    "12.2.0.192.wl.test": { A: ["127.0.10.1"] },
    "13.2.0.192.wl.test": { A: ["127.0.0.255"] },
    "13.2.0.192.bl.test": { A: ["127.0.0.2"] },
    "7.2.0.192.wl.test": { A: ["127.0.0.5"] },
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test": { A: ["127.0.0.2"], TXT: ["v6 listed"] },
  });
});
after(() => dns.close());

function screen(opts: Partial<DnsblOptions> = {}): Dnsbl {
  return new Dnsbl({
    blocklists: ["bl.test"],
    allowlists: [],
    exempt: networkList([]),
    timeoutMs: 1000,
    servers: [`127.0.0.1:${dns.port}`],
    log: silentLogger(),
    ...opts,
  });
}

test("RFC 5782 keys: reversed IPv4 octets, 32 reversed IPv6 nibbles", () => {
  assert.equal(reversedName("192.0.2.99"), "99.2.0.192");
  assert.equal(reversedName("2001:db8::1"), "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
  assert.equal(expandIpv6("::ffff:192.0.2.1"), "0000:0000:0000:0000:0000:ffff:c000:0201");
  assert.equal(expandIpv6("fe80::"), "fe80:0000:0000:0000:0000:0000:0000:0000");
  assert.equal(expandIpv6("1:2:3:4:5:6:7:8"), "0001:0002:0003:0004:0005:0006:0007:0008");
});

test("listed with a TXT record: 554 5.7.1 naming the client, the zone and the reason", async () => {
  const r = await screen().screen("127.0.0.2");
  assert.deepEqual(r, {
    kind: "listed",
    zone: "bl.test",
    reply: { code: 554, enhanced: "5.7.1", lines: ["Service unavailable; client [127.0.0.2] blocked using bl.test; Listed for testing, see https://bl.test/q?ip=127.0.0.2"] },
  });
});

test("listed without a TXT record: the reply has no reason part", async () => {
  const r = await screen().screen("192.0.2.7");
  assert.equal(r.kind, "listed");
  assert.deepEqual(r.kind === "listed" && r.reply.lines, ["Service unavailable; client [192.0.2.7] blocked using bl.test"]);
});

test("an IPv6 client is looked up by nibbles", async () => {
  const r = await screen().screen("2001:db8::1");
  assert.deepEqual(r.kind === "listed" && r.reply.lines, ["Service unavailable; client [2001:db8::1] blocked using bl.test; v6 listed"]);
});

test("not listed (NXDOMAIN) is clean", async () => {
  assert.deepEqual(await screen().screen("192.0.2.1"), { kind: "clean" });
});

test("a hostile TXT reason is printable, one line and bounded", async () => {
  const r = await screen().screen("192.0.2.8");
  assert.equal(r.kind, "listed");
  const line = r.kind === "listed" ? r.reply.lines : [];
  assert.equal(line.length, 1);
  assert.match(line[0]!, /^Service unavailable; client \[192\.0\.2\.8\] blocked using bl\.test; evil 250 ok\?+ y+\.\.\.$/);
  assert.ok(line[0]!.length < 300);
});

test("the first listing zone in config order is named, whichever answered first", async () => {
  const r = await screen({ blocklists: ["other.test", "bl.test"] }).screen("192.0.2.8");
  assert.deepEqual(r.kind === "listed" && r.reply.lines, ["Service unavailable; client [192.0.2.8] blocked using other.test; second list"]);
});

test("answers outside 127.0.0.0/24 (list error codes, NXDOMAIN rewriting) are not listings", async () => {
  assert.deepEqual(await screen().screen("192.0.2.9"), { kind: "clean" });
  assert.deepEqual(await screen().screen("192.0.2.10"), { kind: "clean" });
});

test("a list that does not answer in time, or fails, does not block", async () => {
  const started = Date.now();
  assert.deepEqual(await screen({ timeoutMs: 300 }).screen("192.0.2.11"), { kind: "clean" });
  const took = Date.now() - started;
  assert.ok(took >= 290 && took < 2000, `took ${took} ms`);
  assert.deepEqual(await screen().screen("192.0.2.12"), { kind: "clean" });
});

test("a DNSWL listing wins over a DNSBL listing", async () => {
  assert.deepEqual(await screen({ allowlists: ["wl.test"] }).screen("192.0.2.7"), { kind: "allowlisted", zone: "wl.test" });
  assert.deepEqual(await screen({ allowlists: ["wl.test"] }).screen("192.0.2.12"), { kind: "allowlisted", zone: "wl.test" });
  assert.equal((await screen({ allowlists: ["wl.test"] }).screen("127.0.0.2")).kind, "listed");
  // dnswl.org's 127.0.0.255 means "too many queries", not "trusted".
  assert.equal((await screen({ allowlists: ["wl.test"] }).screen("192.0.2.13")).kind, "listed");
});

test("exempt networks are not looked up", async () => {
  const before = dns.queries.length;
  assert.deepEqual(await screen({ exempt: networkList(["127.0.0.0/8", "::1/128"]) }).screen("127.0.0.2"), { kind: "exempt" });
  assert.equal(dns.queries.length, before);
});

test("answers are kept for a while per client; failed lookups are not", async () => {
  let now = 1_000_000;
  const d = screen({ now: () => now, timeoutMs: 300 });
  const asked = (name: string) => dns.queries.filter((q) => q.name === name && q.type === "A").length;
  const listed = "7.2.0.192.bl.test";
  const before = asked(listed);
  assert.equal((await d.screen("192.0.2.7")).kind, "listed");
  assert.equal((await d.screen("192.0.2.7")).kind, "listed");
  assert.equal(asked(listed), before + 1);
  now += SCREEN_CACHE_MS + 1;
  assert.equal((await d.screen("192.0.2.7")).kind, "listed");
  assert.equal(asked(listed), before + 2);
  const slow = "11.2.0.192.bl.test";
  const slowBefore = asked(slow);
  await d.screen("192.0.2.11");
  await d.screen("192.0.2.11");
  assert.equal(asked(slow), slowBefore + 2);
});

test("with no zones configured nothing is looked up", async () => {
  const before = dns.queries.length;
  assert.deepEqual(await screen({ blocklists: [] }).screen("192.0.2.7"), { kind: "clean" });
  assert.equal(dns.queries.length, before);
});
