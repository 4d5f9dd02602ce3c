// Refuses a HELO/EHLO that claims to be this server: one of our names (hostname, local domains) or an
// address literal of one of our IP addresses (RFC 5321 §4.1.3), from a client that is not on loopback
// or in [auth] trusted_networks. Only a forger or a broken client says that; Postfix admins get the same
// with check_helo_access. Trusts the configured names and the machine's interface addresses.
import net from "node:net";
import os from "node:os";

export interface HeloCheckOptions {
  /** Host names that are ours: the hostname and the local domains. */
  readonly ownNames: readonly string[];
  /** Our IP addresses (default: every interface address of this machine). */
  readonly ownAddresses?: readonly string[];
  /** [auth] trusted_networks: their HELO is not checked. */
  readonly trusted?: net.BlockList;
  /** Clients on loopback are not checked (true in the server; tests turn it off to test on loopback). */
  readonly exemptLoopback: boolean;
}

export class HeloCheck {
  private readonly names: ReadonlySet<string>;
  private readonly addresses = new net.BlockList();

  constructor(private readonly opts: HeloCheckOptions) {
    this.names = new Set(opts.ownNames.map(hostKey));
    for (const ip of opts.ownAddresses ?? interfaceAddresses()) addIp(this.addresses, ip);
  }

  /**
   * True when `helo` names this server and the client may not say so. `peer` is the client's IP,
   * `local` the address it connected to (ours too, even when not an interface address, e.g. behind NAT).
   */
  claimsToBeUs(helo: string, peer: string, loopback: boolean, local: string | undefined): boolean {
    if (loopback && this.opts.exemptLoopback) return false;
    if (this.opts.trusted?.check(peer, family(peer))) return false;
    const literal = /^\[(?:ipv6:)?([^\]]+)\]$/i.exec(helo)?.[1] ?? helo;
    if (net.isIP(literal) !== 0) {
      const ip = literal.replace(/^::ffff:/i, "");
      if (this.addresses.check(ip, family(ip))) return true;
      const here = local?.replace(/^::ffff:/i, "");
      return here !== undefined && net.isIP(here) !== 0 && family(here) === family(ip) && blockOf(here).check(ip, family(ip));
    }
    return this.names.has(hostKey(helo));
  }
}

function hostKey(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

function family(ip: string): "ipv4" | "ipv6" {
  return net.isIPv6(ip) ? "ipv6" : "ipv4";
}

function addIp(list: net.BlockList, ip: string): void {
  const plain = ip.replace(/%.*$/, "");
  if (net.isIP(plain) !== 0) list.addAddress(plain, family(plain));
}

function blockOf(ip: string): net.BlockList {
  const b = new net.BlockList();
  addIp(b, ip);
  return b;
}

function interfaceAddresses(): string[] {
  return Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}
