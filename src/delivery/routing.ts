// Where the runner sends a domain's mail ([delivery]): through the smarthost when one is set (every
// non-local domain goes there, RFC 6409's "submission to a relay"), else by MX routing (mx-router.ts)
// on delivery.mx_port. The smarthost's own name is resolved to addresses (A/AAAA, never its MX), or
// used as is when it is an IP address. Trusts the validated config and the resolver's answers.
import net from "node:net";
import type { Resolver } from "node:dns/promises";
import { makeResolver } from "../core/dns-resolver.js";
import { splitHostPort } from "../config/schema.js";
import { MxRouter, type MxRouterOptions } from "./mx-router.js";
import type { Destination, Router } from "./queue-runner.js";

export interface RoutingOptions extends MxRouterOptions {
  readonly mxPort: number;
  /** "host:port" from delivery.smarthost. */
  readonly smarthost?: string;
}

export function makeRouter(opts: RoutingOptions): Router {
  if (opts.smarthost) return new SmarthostRouter(opts.smarthost, opts);
  const mx = new MxRouter(opts);
  return {
    async route(domain: string): Promise<Destination> {
      const r = await mx.route(domain);
      return r.kind === "hosts" ? { kind: "hosts", port: opts.mxPort, profile: "mx", hosts: r.hosts } : r;
    },
  };
}

class SmarthostRouter implements Router {
  private readonly host: string;
  private readonly port: number;
  private readonly resolver: Resolver;

  constructor(smarthost: string, opts: RoutingOptions) {
    const { host, port } = splitHostPort(smarthost);
    this.host = host;
    this.port = port;
    this.resolver = makeResolver(opts);
  }

  async route(): Promise<Destination> {
    const hosts = [{ host: this.host, addresses: net.isIP(this.host) ? [this.host] : await this.addresses() }];
    if (hosts[0]!.addresses.length === 0) return { kind: "defer", status: "4.4.3", reason: `smarthost ${this.host} has no address` };
    return { kind: "hosts", port: this.port, profile: "smarthost", hosts };
  }

  /** IPv4 and IPv6 addresses of the smarthost; a lookup failure is "none" (the runner defers). */
  private async addresses(): Promise<string[]> {
    const [v4, v6] = await Promise.all([this.resolver.resolve4(this.host).catch(() => []), this.resolver.resolve6(this.host).catch(() => [])]);
    return [...v4, ...v6];
  }
}
