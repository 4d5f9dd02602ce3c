// The loopback DNS server for end-to-end tests (MX routing against a running Petrel). It lives in
// src/testing/ so unit tests can use it without importing from test/; this is only the door for test/.
export { startDnsServer, type DnsServer, type DnsQueryLog, type Zone, type ZoneEntry } from "../../src/testing/dns-server.js";
