// The running server's control socket, data_dir/control.sock: how `petrel queue flush/delete/bounce`, `petrel
// sendmail` (to have a dropped message picked up at once) and ETRN ask the server to act now. One JSON
// request line, one JSON answer line, then close. A Unix socket inside the private data_dir (0700), so
// only the data_dir's owner can connect; requests are still validated and bounded (4 KB, 5 s).
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import type { Logger } from "../core/log.js";

export type ControlRequest =
  | { readonly cmd: "flush"; readonly domain?: string }
  | { readonly cmd: "delete"; readonly id: string }
  | { readonly cmd: "bounce"; readonly id: string }
  | { readonly cmd: "pickup" }
  | { readonly cmd: "ping" };
export type ControlAnswer = { readonly ok: true; readonly [key: string]: unknown } | { readonly ok: false; readonly error: string };
export type ControlHandler = (req: ControlRequest) => Promise<ControlAnswer>;

const MAX_REQUEST = 4096;
const TIMEOUT_MS = 5000;

export function controlSocketPath(dataDir: string): string {
  return path.join(dataDir, "control.sock");
}

/** Parses one request line; null when it is not a request Petrel knows. */
export function parseControlRequest(line: string): ControlRequest | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null) return null;
  const o = v as Record<string, unknown>;
  if (o.cmd === "ping" || o.cmd === "pickup") return { cmd: o.cmd };
  if ((o.cmd === "delete" || o.cmd === "bounce") && typeof o.id === "string" && /^[A-Za-z0-9]{1,64}$/.test(o.id)) return { cmd: o.cmd, id: o.id };
  if (o.cmd === "flush") {
    if (o.domain === undefined) return { cmd: "flush" };
    if (typeof o.domain === "string" && /^[A-Za-z0-9.-]{1,253}$/.test(o.domain)) return { cmd: "flush", domain: o.domain.toLowerCase() };
  }
  return null;
}

export class ControlServer {
  private server: net.Server | null = null;

  constructor(
    private readonly dataDir: string,
    private readonly handler: ControlHandler,
    private readonly log: Logger,
  ) {}

  /** Listens on data_dir/control.sock; a socket file left by a crashed server is replaced (the data_dir lock says we are the only server). */
  async start(): Promise<void> {
    const file = controlSocketPath(this.dataDir);
    fs.rmSync(file, { force: true });
    const server = net.createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(file, () => {
        server.off("error", reject);
        resolve();
      });
    });
    fs.chmodSync(file, 0o600);
    server.on("error", (err) => this.log.error({ err }, "control socket error"));
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    fs.rmSync(controlSocketPath(this.dataDir), { force: true });
  }

  private serve(socket: net.Socket): void {
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy());
    socket.on("error", () => undefined);
    let buf = "";
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl < 0) {
        if (buf.length > MAX_REQUEST) socket.end(`${JSON.stringify({ ok: false, error: "request too long" })}\n`);
        return;
      }
      socket.removeAllListeners("data");
      const req = parseControlRequest(buf.slice(0, nl));
      if (!req) return void socket.end(`${JSON.stringify({ ok: false, error: "unknown request" })}\n`);
      this.handler(req).then(
        (answer) => socket.end(`${JSON.stringify(answer)}\n`),
        (err: unknown) => {
          this.log.error({ err, cmd: req.cmd }, "control request failed");
          socket.end(`${JSON.stringify({ ok: false, error: err instanceof Error ? err.message : String(err) })}\n`);
        },
      );
    });
  }
}

/** Sends one request to the running server; "not-running" when nothing listens on the socket. */
export async function controlRequest(dataDir: string, req: ControlRequest, timeoutMs = TIMEOUT_MS): Promise<ControlAnswer | "not-running"> {
  return new Promise((resolve) => {
    const socket = net.connect(controlSocketPath(dataDir));
    let buf = "";
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ ok: false, error: "the server did not answer in time" });
    }, timeoutMs);
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write(`${JSON.stringify(req)}\n`));
    socket.on("data", (d: string) => (buf += d));
    socket.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code === "ENOENT" || err.code === "ECONNREFUSED" ? "not-running" : { ok: false, error: err.message });
    });
    socket.on("end", () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf.trim()) as ControlAnswer);
      } catch {
        resolve({ ok: false, error: "the server's answer did not parse" });
      }
    });
  });
}
