// Unit tests of the HELO identity check: our names and address literals refused from outside, loopback
// and trusted networks exempt, other names and literals allowed.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { HeloCheck } from "./helo-check.js";

const trusted = new net.BlockList();
trusted.addSubnet("10.0.0.0", 8, "ipv4");
const check = new HeloCheck({ ownNames: ["mx.petrel.test", "petrel.test"], ownAddresses: ["192.0.2.1", "2001:db8::25"], trusted, exemptLoopback: true });
const outside = (helo: string, local?: string) => check.claimsToBeUs(helo, "198.51.100.7", false, local);

test("our host name or a local domain, any case, with or without a final dot, is refused from outside", () => {
  for (const helo of ["mx.petrel.test", "MX.Petrel.Test", "petrel.test.", "PETREL.TEST"]) assert.equal(outside(helo), true, helo);
});

test("an address literal of ours (or the address the client connected to) is refused from outside", () => {
  for (const helo of ["[192.0.2.1]", "[IPv6:2001:db8:0::25]", "[ipv6:2001:DB8::25]", "192.0.2.1"]) assert.equal(outside(helo), true, helo);
  assert.equal(outside("[203.0.113.5]", "203.0.113.5"), true, "the connected-to address (NAT)");
  assert.equal(outside("[203.0.113.5]", "::ffff:203.0.113.5"), true);
});

test("other names and literals pass; loopback and trusted networks are not checked", () => {
  for (const helo of ["client.test", "mx.petrel.test.evil.test", "[198.51.100.7]", "[IPv6:2001:db8::26]"]) assert.equal(outside(helo), false, helo);
  assert.equal(check.claimsToBeUs("mx.petrel.test", "127.0.0.1", true, "127.0.0.1"), false);
  assert.equal(check.claimsToBeUs("mx.petrel.test", "10.1.2.3", false, undefined), false);
  const strict = new HeloCheck({ ownNames: ["mx.petrel.test"], ownAddresses: [], exemptLoopback: false });
  assert.equal(strict.claimsToBeUs("mx.petrel.test", "127.0.0.1", true, "127.0.0.1"), true, "loopback counts when not exempt");
});
