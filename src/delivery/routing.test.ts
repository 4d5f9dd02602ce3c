// Unit tests: with a smarthost every domain goes to it (by its A/AAAA, never its MX; an IP is used as
// is), on its port with the smarthost profile; without one, MX routes get delivery.mx_port and the mx profile.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startDnsServer } from "../testing/dns-server.js";
import { makeRouter } from "./routing.js";

let dns: Awaited<ReturnType<typeof startDnsServer>>;
before(async () => {
  dns = await startDnsServer({
    "relay.provider.test": { A: ["127.0.0.21"], MX: [[10, "elsewhere.test"]] },
    "far.test": { MX: [[10, "mx.far.test"]] },
    "mx.far.test": { A: ["127.0.0.22"] },
    "nullmx.test": { MX: [[0, "."]] },
  });
});
after(() => dns.close());

const base = () => ({ servers: [`127.0.0.1:${dns.port}`], localNames: ["mx.petrel.test"], localDomains: ["petrel.test"], timeoutMs: 300, tries: 1 });

test("MX routing: hosts with delivery.mx_port and the mx profile; verdicts pass through", async () => {
  const r = makeRouter({ ...base(), mxPort: 2525 });
  assert.deepEqual(await r.route("far.test"), { kind: "hosts", port: 2525, profile: "mx", hosts: [{ host: "mx.far.test", preference: 10, addresses: ["127.0.0.22"] }] });
  assert.equal((await r.route("nullmx.test")).kind, "bounce");
});

test("a smarthost takes every domain, by its address records (not its MX); an IP smarthost needs no DNS; no address defers", async () => {
  const r = makeRouter({ ...base(), mxPort: 25, smarthost: "relay.provider.test:587" });
  const want = { kind: "hosts", port: 587, profile: "smarthost", hosts: [{ host: "relay.provider.test", addresses: ["127.0.0.21"] }] };
  assert.deepEqual(await r.route("far.test"), want);
  assert.deepEqual(await r.route("nullmx.test"), want);
  assert.deepEqual(await makeRouter({ ...base(), mxPort: 25, smarthost: "127.0.0.30:465" }).route("x.test"), {
    kind: "hosts",
    port: 465,
    profile: "smarthost",
    hosts: [{ host: "127.0.0.30", addresses: ["127.0.0.30"] }],
  });
  assert.equal((await makeRouter({ ...base(), mxPort: 25, smarthost: "missing.provider.test:587" }).route("x.test")).kind, "defer");
});
