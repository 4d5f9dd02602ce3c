// Unit tests of MX routing (RFC 5321 §5.1, RFC 7505) against the loopback DNS server in src/testing/,
// asked through Node's real resolver: preference order and shuffling, CNAMEs, implicit MX, null MX,
// NXDOMAIN, SERVFAIL, timeouts, refused servers, loops back to this host, and address literals.
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { startDnsServer, type DnsServer, type Zone } from "../testing/dns-server.js";
import { MxRouter, type MxRouterOptions, type ResolverLike, type Route } from "./mx-router.js";

const ZONE: Zone = {
  "example.test": { MX: [[20, "mx2.example.test"], [10, "mx1.example.test."]] },
  "mx1.example.test": { A: ["192.0.2.1", "192.0.2.2"], AAAA: ["2001:db8::1"] },
  "mx2.example.test": { A: ["192.0.2.20"] },
  "equal.test": { MX: [[10, "a.equal.test"], [10, "b.equal.test"], [10, "c.equal.test"], [5, "first.equal.test"], [30, "last.equal.test"]] },
  "a.equal.test": { A: ["192.0.2.31"] },
  "b.equal.test": { A: ["192.0.2.32"] },
  "c.equal.test": { A: ["192.0.2.33"] },
  "first.equal.test": { A: ["192.0.2.30"] },
  "last.equal.test": { A: ["192.0.2.39"] },
  "twice.test": { MX: [[10, "mx2.example.test"], [30, "mx2.example.test"], [20, "mx1.example.test"]] },
  "partial.test": { MX: [[10, "gone.partial.test"], [20, "empty.partial.test"], [30, "mx2.example.test"]] },
  "empty.partial.test": { TXT: ["no addresses here"] },
  "noaddr.test": { MX: [[10, "gone.noaddr.test"], [20, "empty.partial.test"]] },
  "alias.test": { CNAME: "example.test" },
  "cnamemx.test": { MX: [[10, "mail.cnamemx.test"]] },
  "mail.cnamemx.test": { CNAME: "real.cnamemx.test" },
  "real.cnamemx.test": { A: ["192.0.2.50"], AAAA: ["2001:db8::50"] },
  "bare.test": { A: ["192.0.2.60"], AAAA: ["2001:db8::60", "2001:db8::61"] },
  "nothing.test": { TXT: ["v=spf1 -all"] },
  "null.test": { MX: [[0, "."]], A: ["192.0.2.70"] },
  "halfnull.test": { MX: [[0, "."], [10, "mx2.example.test"]] },
  "broken.test": { rcode: "SERVFAIL" },
  "brokenhost.test": { MX: [[10, "bad.brokenhost.test"]] },
  "bad.brokenhost.test": { rcode: "SERVFAIL" },
  "fallback.test": { MX: [[10, "bad.brokenhost.test"], [20, "mx2.example.test"]] },
  "slow.test": { delayMs: 3000, MX: [[10, "mx2.example.test"]] },
  "self.test": { MX: [[10, "mail.petrel.test"], [20, "mx2.example.test"]] },
  "backup.test": { MX: [[5, "mx1.example.test"], [10, "b.equal.test"], [20, "MAIL.petrel.test"], [20, "a.equal.test"], [30, "mx2.example.test"]] },
  "selfip.test": { MX: [[10, "other-name.selfip.test"]] },
  "other-name.selfip.test": { A: ["198.51.100.7"] },
  "selfip6.test": { MX: [[10, "v6.selfip.test"]] },
  "v6.selfip.test": { AAAA: ["2001:0db8:0000::7"] },
  "selfbare.test": { A: ["198.51.100.7"] },
  "mine.test": { MX: [[10, "mail.petrel.test"]] },
  "mail.petrel.test": { A: ["198.51.100.7"] },
};

let dns: DnsServer;
before(async () => {
  dns = await startDnsServer(ZONE);
});
after(() => dns.close());
beforeEach(() => {
  dns.setZone(ZONE);
  dns.queries.length = 0;
});

function router(extra: Partial<MxRouterOptions> = {}, resolver?: ResolverLike): MxRouter {
  const opts: MxRouterOptions = {
    servers: [`127.0.0.1:${dns.port}`],
    timeoutMs: 200,
    tries: 1,
    localNames: ["mail.petrel.test", "198.51.100.7", "2001:db8::7"],
    localDomains: ["petrel.test", "mine.test"],
    random: () => 0,
    ...extra,
  };
  return new MxRouter(opts, resolver);
}

function hosts(route: Route): [string, number, string[]][] {
  assert.equal(route.kind, "hosts", JSON.stringify(route));
  return route.kind === "hosts" ? route.hosts.map((h) => [h.host, h.preference, [...h.addresses]]) : [];
}

test("MX hosts in preference order, each with its addresses interleaved IPv6 first", async () => {
  const route = await router().route("example.test");
  assert.deepEqual(hosts(route), [
    ["mx1.example.test", 10, ["2001:db8::1", "192.0.2.1", "192.0.2.2"]],
    ["mx2.example.test", 20, ["192.0.2.20"]],
  ]);
  assert.equal(route.kind === "hosts" && route.implicit, false);
});

test("the domain is case-insensitive and may end in a dot", async () => {
  assert.deepEqual(hosts(await router().route("Example.TEST.")), hosts(await router().route("example.test")));
});

test("equal preferences are shuffled by the injected random source, within their rank only", async () => {
  const names = async (random: () => number) => hosts(await router({ random }).route("equal.test")).map(([h]) => h);
  assert.deepEqual(await names(() => 0), ["first.equal.test", "b.equal.test", "c.equal.test", "a.equal.test", "last.equal.test"]);
  assert.deepEqual(await names(() => 0.999), ["first.equal.test", "a.equal.test", "b.equal.test", "c.equal.test", "last.equal.test"]);
  const seen = new Set<string>();
  for (let i = 0; i < 30; i++) {
    const order = await names(Math.random);
    assert.equal(order[0], "first.equal.test");
    assert.equal(order[4], "last.equal.test");
    seen.add(order.slice(1, 4).join(","));
  }
  assert.ok(seen.size >= 3, `only ${seen.size} orders of three equal hosts in 30 routes`);
});

test("a host listed twice is tried once, at its best preference", async () => {
  assert.deepEqual(hosts(await router().route("twice.test")).map(([h, p]) => [h, p]), [
    ["mx2.example.test", 10],
    ["mx1.example.test", 20],
  ]);
});

test("MX hosts without addresses (NXDOMAIN, no A/AAAA) are skipped", async () => {
  assert.deepEqual(hosts(await router().route("partial.test")), [["mx2.example.test", 30, ["192.0.2.20"]]]);
});

test("no address for any MX host bounces 5.4.4", async () => {
  const route = await router().route("noaddr.test");
  assert.deepEqual(route, { kind: "bounce", status: "5.4.4", reason: "No address for any MX host of noaddr.test (gone.noaddr.test, empty.partial.test)" });
});

test("a domain that is a CNAME is routed by its target's MX", async () => {
  assert.deepEqual(hosts(await router().route("alias.test")), hosts(await router().route("example.test")));
});

test("an MX target that is a CNAME still resolves, under the name the MX gave", async () => {
  assert.deepEqual(hosts(await router().route("cnamemx.test")), [["mail.cnamemx.test", 10, ["2001:db8::50", "192.0.2.50"]]]);
});

test("no MX (NODATA): the implicit MX is the domain's own A and AAAA (RFC 5321 §5.1)", async () => {
  const route = await router().route("bare.test");
  assert.deepEqual(route, {
    kind: "hosts",
    implicit: true,
    hosts: [{ host: "bare.test", preference: 0, addresses: ["2001:db8::60", "192.0.2.60", "2001:db8::61"] }],
  });
});

test("no MX and no address bounces 5.4.4", async () => {
  assert.deepEqual(await router().route("nothing.test"), { kind: "bounce", status: "5.4.4", reason: "Domain nothing.test has no MX and no address" });
});

test("null MX bounces 5.1.10 at once, without looking up any address (RFC 7505 §3)", async () => {
  assert.deepEqual(await router().route("null.test"), { kind: "bounce", status: "5.1.10", reason: "Domain null.test accepts no mail (null MX, RFC 7505)" });
  assert.deepEqual(dns.queries, [{ name: "null.test", type: "MX" }]);
});

test("a root MX among real ones is ignored rather than tried", async () => {
  assert.deepEqual(hosts(await router().route("halfnull.test")), [["mx2.example.test", 10, ["192.0.2.20"]]]);
});

test("NXDOMAIN bounces 5.1.2", async () => {
  assert.deepEqual(await router().route("nowhere.test"), { kind: "bounce", status: "5.1.2", reason: "Domain nowhere.test does not exist (NXDOMAIN)" });
});

test("SERVFAIL for the MX defers 4.4.3", async () => {
  assert.deepEqual(await router().route("broken.test"), { kind: "defer", status: "4.4.3", reason: "DNS lookup of MX for broken.test failed: ESERVFAIL" });
});

test("SERVFAIL for the only MX host's address defers; with a backup MX, the backup is used", async () => {
  assert.deepEqual(await router().route("brokenhost.test"), {
    kind: "defer",
    status: "4.4.3",
    reason: "DNS lookup of address of bad.brokenhost.test (MX for brokenhost.test) failed: ESERVFAIL",
  });
  assert.deepEqual(hosts(await router().route("fallback.test")), [["mx2.example.test", 20, ["192.0.2.20"]]]);
});

test("a server slower than the timeout defers 4.4.3, in bounded time", async () => {
  const started = Date.now();
  const route = await router({ timeoutMs: 100, tries: 1 }).route("slow.test");
  assert.deepEqual(route, { kind: "defer", status: "4.4.3", reason: "DNS lookup of MX for slow.test failed: ETIMEOUT" });
  assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
});

test("a DNS server that refuses (nothing listening) defers 4.4.3", async () => {
  const closed = await startDnsServer({});
  await closed.close();
  const route = await router({ servers: [`127.0.0.1:${closed.port}`] }).route("example.test");
  assert.deepEqual(route, { kind: "defer", status: "4.4.3", reason: "DNS lookup of MX for example.test failed: ECONNREFUSED" });
});

test("[dns] servers: the first that answers is used", async () => {
  const closed = await startDnsServer({});
  await closed.close();
  const route = await router({ servers: [`127.0.0.1:${closed.port}`, `127.0.0.1:${dns.port}`] }).route("example.test");
  assert.equal(hosts(route).length, 2);
});

test("[dns] servers take the three forms of the config: ip, ip:port, [v6]:port", () => {
  assert.doesNotThrow(() => router({ servers: ["192.0.2.53", "127.0.0.1:5353", "[::1]:53"] }));
  assert.throws(() => router({ servers: ["not a server"] }));
});

test("an MX naming this host as the most preferred is a loop: 5.4.6", async () => {
  assert.deepEqual(await router().route("self.test"), { kind: "bounce", status: "5.4.6", reason: "mail for self.test loops back to myself" });
});

test("as a backup MX, only hosts more preferred than ours are kept, equal ones dropped (RFC 5321 §5.1)", async () => {
  assert.deepEqual(hosts(await router().route("backup.test")).map(([h, p]) => [h, p]), [
    ["mx1.example.test", 5],
    ["b.equal.test", 10],
  ]);
});

test("an MX whose address is ours (IPv4, or IPv6 written another way) is a loop too", async () => {
  assert.deepEqual(await router().route("selfip.test"), { kind: "bounce", status: "5.4.6", reason: "mail for selfip.test loops back to myself" });
  assert.deepEqual(await router().route("selfip6.test"), { kind: "bounce", status: "5.4.6", reason: "mail for selfip6.test loops back to myself" });
});

test("an implicit MX whose address is ours is a loop", async () => {
  assert.deepEqual(await router().route("selfbare.test"), { kind: "bounce", status: "5.4.6", reason: "mail for selfbare.test loops back to myself" });
});

test("the loop check does not apply to our own domains", async () => {
  assert.deepEqual(hosts(await router().route("mine.test")), [["mail.petrel.test", 10, ["198.51.100.7"]]]);
});

test("address literals route to that address without DNS; ours loop; malformed ones bounce 5.1.2", async () => {
  assert.deepEqual(await router().route("[192.0.2.9]"), { kind: "hosts", implicit: true, hosts: [{ host: "[192.0.2.9]", preference: 0, addresses: ["192.0.2.9"] }] });
  assert.deepEqual(hosts(await router().route("[IPv6:2001:db8::9]")), [["[ipv6:2001:db8::9]", 0, ["2001:db8::9"]]]);
  assert.deepEqual(await router().route("[198.51.100.7]"), { kind: "bounce", status: "5.4.6", reason: "mail for [198.51.100.7] loops back to myself" });
  assert.deepEqual(await router().route("[192.0.2.999]"), { kind: "bounce", status: "5.1.2", reason: "Cannot route to address literal [192.0.2.999]" });
  assert.deepEqual(await router().route("[2001:db8::9]"), { kind: "bounce", status: "5.1.2", reason: "Cannot route to address literal [2001:db8::9]" });
  assert.deepEqual(dns.queries, []);
});

test("a non-ASCII domain is a programming error: the caller converts to A-labels first", async () => {
  await assert.rejects(router().route("bücher.test"), TypeError);
});

test("an injected resolver: EREFUSED defers; answers that are not addresses are dropped", async () => {
  const fail = (code: string) => () => Promise.reject(Object.assign(new Error(code), { code }));
  const refusing: ResolverLike = { resolveMx: fail("EREFUSED"), resolve4: fail("EREFUSED"), resolve6: fail("EREFUSED") };
  assert.deepEqual(await router({}, refusing).route("any.test"), { kind: "defer", status: "4.4.3", reason: "DNS lookup of MX for any.test failed: EREFUSED" });
  const fixed: ResolverLike = {
    resolveMx: async () => [{ exchange: "mx.any.test", priority: 0 }],
    resolve4: async () => ["192.0.2.80", "not an address"],
    resolve6: fail("ENODATA"),
  };
  assert.deepEqual(hosts(await router({}, fixed).route("any.test")), [["mx.any.test", 0, ["192.0.2.80"]]]);
});
