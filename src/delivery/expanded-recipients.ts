// The recipients one message reaches after aliases and lists are expanded, with the cap
// limits.max_expanded_recipients. A route accepted once (the same list named by 100 pipelined RCPTs)
// is counted once and not walked again.
import type { Route } from "./recipient-resolver.js";

export type Admission =
  | { readonly kind: "ok" }
  /** Over the cap; `alone` when this route by itself is larger than the cap, so it can never fit. */
  | { readonly kind: "over"; readonly alone: boolean; readonly size: number };

export class ExpandedRecipients {
  private readonly seen = new Set<string>();
  private readonly admitted = new WeakSet<Route>();

  constructor(readonly max: number) {}

  get count(): number {
    return this.seen.size;
  }

  /** Adds the route's recipients when the total stays within the cap; otherwise changes nothing. */
  admit(route: Route): Admission {
    if (this.admitted.has(route)) return { kind: "ok" };
    const size = route.local.length + route.remote.length;
    if (size > this.max) return { kind: "over", alone: true, size };
    let fresh = 0;
    for (const a of route.local) if (!this.seen.has(a)) fresh++;
    for (const a of route.remote) if (!this.seen.has(a)) fresh++;
    if (this.seen.size + fresh > this.max) return { kind: "over", alone: false, size };
    for (const a of route.local) this.seen.add(a);
    for (const a of route.remote) this.seen.add(a);
    this.admitted.add(route);
    return { kind: "ok" };
  }
}
