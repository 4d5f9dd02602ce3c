// A DNS server on 127.0.0.1 for tests (UDP and TCP on one port, RFC 1035 §4 wire format), answering from
// a zone given as data, like a recursive resolver would: in-zone CNAME chains followed (§3.6.2), NXDOMAIN
// for unknown names, forced rcodes, delays for timeouts. Trusts nothing it receives; malformed queries
// get FORMERR or are dropped. Answers carry TTL 0, so no caching resolver in between keeps them.
import dgram from "node:dgram";
import net from "node:net";

export interface ZoneEntry {
  MX?: [number, string][];
  A?: string[];
  AAAA?: string[];
  CNAME?: string;
  TXT?: string[];
  PTR?: string[];
  rcode?: "NXDOMAIN" | "SERVFAIL";
  delayMs?: number;
}
/** Names case-insensitive, with or without the final dot. Null MX: `MX: [[0, "."]]`. */
export interface Zone {
  [name: string]: ZoneEntry;
}

export interface DnsQueryLog {
  readonly name: string;
  readonly type: string;
}

export interface DnsServer {
  readonly port: number;
  readonly address: string;
  /** Every question received, in order: the name lowercased without its final dot, the type's mnemonic. */
  readonly queries: DnsQueryLog[];
  setZone(zone: Zone): void;
  close(): Promise<void>;
}

const TYPES = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, OPT: 41, ANY: 255 } as const;
const TYPE_NAMES = new Map<number, string>(Object.entries(TYPES).map(([k, v]) => [v, k]));
const RCODES = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4 } as const;
const CLASS_IN = 1;
/** RFC 1035 §4.2.1: without EDNS a UDP answer is at most 512 bytes; longer ones are truncated (TC). */
const PLAIN_UDP_LIMIT = 512;
const MAX_CNAME_CHAIN = 8;

interface Question {
  readonly id: number;
  readonly rd: boolean;
  readonly name: string;
  readonly type: number;
  readonly klass: number;
  /** The question section as received, echoed back verbatim. */
  readonly raw: Buffer;
  /** The requester's EDNS UDP payload size (RFC 6891 §6.2.3), or 0 without an OPT record. */
  readonly ednsSize: number;
}

type Parsed = { kind: "ok"; q: Question } | { kind: "formerr"; id: number; rd: boolean } | { kind: "drop" };

export async function startDnsServer(initial: Zone): Promise<DnsServer> {
  let zone = normalise(initial);
  const queries: DnsQueryLog[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<net.Socket>();
  let closed = false;

  const answer = (msg: Buffer, send: (b: Buffer) => void, overUdp: boolean): void => {
    const parsed = parseQuery(msg);
    if (parsed.kind === "drop") return;
    if (parsed.kind === "formerr") return send(header(parsed.id, parsed.rd, RCODES.FORMERR, 0, 0, false));
    const q = parsed.q;
    queries.push({ name: q.name, type: TYPE_NAMES.get(q.type) ?? `TYPE${q.type}` });
    const entry = zone.get(q.name);
    const reply = (): void => {
      if (closed) return;
      const full = respond(zone, q);
      const limit = overUdp ? Math.max(PLAIN_UDP_LIMIT, Math.min(q.ednsSize, 4096)) : 65535;
      send(full.length <= limit ? full : Buffer.concat([header(q.id, q.rd, full[3]! & 0x0f, 1, 0, true), q.raw]));
    };
    if (entry?.delayMs) {
      const t = setTimeout(() => {
        timers.delete(t);
        reply();
      }, entry.delayMs);
      timers.add(t);
    } else reply();
  };

  const onUdp = (udp: dgram.Socket) => (msg: Buffer, rinfo: dgram.RemoteInfo) => answer(msg, (b) => udp.send(b, rinfo.port, rinfo.address), true);
  const tcp = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    let pending = Buffer.alloc(0);
    socket.on("data", (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      // RFC 1035 §4.2.2: each message is preceded by its two-byte length.
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const msg = pending.subarray(2, 2 + pending.readUInt16BE(0));
        pending = pending.subarray(2 + msg.length);
        answer(msg, (b) => {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(b.length);
          if (!socket.destroyed) socket.write(Buffer.concat([len, b]));
        }, false);
      }
    });
  });

  const { udp, port } = await bindBoth(onUdp, tcp);
  return {
    port,
    address: "127.0.0.1",
    queries,
    setZone(z: Zone) {
      zone = normalise(z);
    },
    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
    },
  };
}

/** UDP first on an ephemeral port, then TCP on the same number; another pair of tries when TCP's is taken. */
async function bindBoth(
  onMessage: (udp: dgram.Socket) => (msg: Buffer, rinfo: dgram.RemoteInfo) => void,
  tcp: net.Server,
): Promise<{ udp: dgram.Socket; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const udp = dgram.createSocket("udp4");
    udp.on("message", onMessage(udp));
    await new Promise<void>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(0, "127.0.0.1", () => {
        udp.off("error", reject);
        resolve();
      });
    });
    udp.on("error", () => undefined);
    const port = udp.address().port;
    const ok = await new Promise<boolean>((resolve) => {
      const fail = (): void => resolve(false);
      tcp.once("error", fail);
      tcp.listen(port, "127.0.0.1", () => {
        tcp.off("error", fail);
        resolve(true);
      });
    });
    if (ok) return { udp, port };
    await new Promise<void>((r) => udp.close(() => r()));
    if (attempt >= 20) throw new Error("Cannot find a port free for both UDP and TCP on 127.0.0.1");
  }
}

function normalise(z: Zone): Map<string, ZoneEntry> {
  const m = new Map<string, ZoneEntry>();
  for (const [name, entry] of Object.entries(z)) m.set(canonical(name), entry);
  return m;
}

function canonical(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") && lower !== "." ? lower.slice(0, -1) : lower;
}

function parseQuery(msg: Buffer): Parsed {
  if (msg.length < 12) return { kind: "drop" };
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  const rd = (flags & 0x0100) !== 0;
  if (flags & 0x8000) return { kind: "drop" }; // a response, not a query
  const qd = msg.readUInt16BE(4);
  if (qd !== 1 || (flags >> 11) & 0x0f) return { kind: "formerr", id, rd };
  const labels: string[] = [];
  let at = 12;
  for (;;) {
    const len = msg[at];
    if (len === undefined || len > 63) return { kind: "formerr", id, rd }; // no compression in questions
    at++;
    if (len === 0) break;
    if (at + len > msg.length) return { kind: "formerr", id, rd };
    labels.push(msg.toString("latin1", at, at + len));
    at += len;
  }
  if (at + 4 > msg.length) return { kind: "formerr", id, rd };
  const type = msg.readUInt16BE(at);
  const klass = msg.readUInt16BE(at + 2);
  const raw = msg.subarray(12, at + 4);
  at += 4;
  let ednsSize = 0;
  // Additional section: look for an OPT record (root name, type 41, class = UDP payload size).
  const ar = msg.readUInt16BE(10);
  if (ar > 0 && msg.readUInt16BE(6) === 0 && msg.readUInt16BE(8) === 0 && msg[at] === 0 && at + 11 <= msg.length) {
    if (msg.readUInt16BE(at + 1) === TYPES.OPT) ednsSize = msg.readUInt16BE(at + 3);
  }
  const name = labels.length === 0 ? "." : canonical(labels.join("."));
  return { kind: "ok", q: { id, rd, name, type, klass, raw, ednsSize } };
}

function header(id: number, rd: boolean, rcode: number, qd: number, an: number, tc: boolean): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  // QR=1, opcode 0, AA=1, TC, RD copied, RA=1 (we act as a recursive resolver).
  b.writeUInt16BE(0x8000 | 0x0400 | (tc ? 0x0200 : 0) | (rd ? 0x0100 : 0) | 0x0080 | rcode, 2);
  b.writeUInt16BE(qd, 4);
  b.writeUInt16BE(an, 6);
  return b;
}

function respond(zone: Map<string, ZoneEntry>, q: Question): Buffer {
  if (q.klass !== CLASS_IN) return Buffer.concat([header(q.id, q.rd, RCODES.NOTIMP, 1, 0, false), q.raw]);
  const answers: Buffer[] = [];
  let name = q.name;
  let rcode: number = RCODES.NOERROR;
  const seen = new Set<string>();
  for (let hop = 0; ; hop++) {
    const entry = zone.get(name);
    if (entry?.rcode) {
      rcode = RCODES[entry.rcode];
      break;
    }
    if (!entry) {
      rcode = RCODES.NXDOMAIN; // also at the end of a CNAME chain leaving the zone, as a resolver reports it
      break;
    }
    if (entry.CNAME !== undefined && q.type !== TYPES.CNAME) {
      answers.push(record(name, TYPES.CNAME, encodeName(entry.CNAME)));
      seen.add(name);
      name = canonical(entry.CNAME);
      if (seen.has(name) || hop >= MAX_CNAME_CHAIN) {
        rcode = RCODES.SERVFAIL; // a CNAME loop
        answers.length = 0;
        break;
      }
      continue;
    }
    answers.push(...records(name, entry, q.type));
    break;
  }
  return Buffer.concat([header(q.id, q.rd, rcode, 1, answers.length, false), q.raw, ...answers]);
}

function records(name: string, e: ZoneEntry, type: number): Buffer[] {
  const any = type === TYPES.ANY;
  const out: Buffer[] = [];
  if (any || type === TYPES.MX) for (const [pref, host] of e.MX ?? []) out.push(record(name, TYPES.MX, Buffer.concat([u16(pref), encodeName(host)])));
  if (any || type === TYPES.A) for (const ip of e.A ?? []) out.push(record(name, TYPES.A, ipv4(ip)));
  if (any || type === TYPES.AAAA) for (const ip of e.AAAA ?? []) out.push(record(name, TYPES.AAAA, ipv6(ip)));
  if ((any || type === TYPES.CNAME) && e.CNAME !== undefined) out.push(record(name, TYPES.CNAME, encodeName(e.CNAME)));
  if (any || type === TYPES.TXT) for (const text of e.TXT ?? []) out.push(record(name, TYPES.TXT, characterStrings(text)));
  if (any || type === TYPES.PTR) for (const target of e.PTR ?? []) out.push(record(name, TYPES.PTR, encodeName(target)));
  return out;
}

function record(name: string, type: number, rdata: Buffer): Buffer {
  // NAME, TYPE, CLASS IN, TTL 0, RDLENGTH, RDATA (RFC 1035 §4.1.3)
  return Buffer.concat([encodeName(name), u16(type), u16(CLASS_IN), Buffer.alloc(4), u16(rdata.length), rdata]);
}

function encodeName(name: string): Buffer {
  const c = canonical(name);
  if (c === "." || c === "") return Buffer.from([0]);
  const parts: Buffer[] = [];
  for (const label of c.split(".")) {
    const bytes = Buffer.from(label, "latin1");
    if (bytes.length === 0 || bytes.length > 63) throw new RangeError(`Cannot encode DNS name ${name}`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/** TXT RDATA: one or more <character-string>s of at most 255 bytes each (RFC 1035 §3.3.14). */
function characterStrings(text: string): Buffer {
  const bytes = Buffer.from(text, "utf8");
  const parts: Buffer[] = [];
  for (let at = 0; at < bytes.length || parts.length === 0; at += 255) {
    const piece = bytes.subarray(at, at + 255);
    parts.push(Buffer.from([piece.length]), piece);
  }
  return Buffer.concat(parts);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function ipv4(ip: string): Buffer {
  if (!net.isIPv4(ip)) throw new RangeError(`Cannot encode IPv4 address ${ip}`);
  return Buffer.from(ip.split(".").map(Number));
}

function ipv6(ip: string): Buffer {
  if (!net.isIPv6(ip)) throw new RangeError(`Cannot encode IPv6 address ${ip}`);
  const [head = "", tail = ""] = ip.includes("::") ? ip.split("::") : [ip, ""];
  const groups = (s: string): number[] =>
    s === ""
      ? []
      : s.split(":").flatMap((g) => (g.includes(".") ? ((o) => [(o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!])(g.split(".").map(Number)) : [parseInt(g, 16)]));
  const h = groups(head);
  const t = groups(tail);
  const all = ip.includes("::") ? [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t] : h;
  const b = Buffer.alloc(16);
  all.forEach((g, i) => b.writeUInt16BE(g, i * 2));
  return b;
}
