// The configuration schema: every key, its type, its default. Validation names the offending key.
// Keys of features that later issues build (submission, TLS, delivery, DNS) parse already.
import os from "node:os";
import { z } from "zod";

const listenAddress = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$/, 'expected "host:port", e.g. "127.0.0.1:2525" or "[::1]:2525"')
  .refine((s) => Number(s.slice(s.lastIndexOf(":") + 1)) <= 65535, "port must be 0..65535");
const listenList = z.array(listenAddress);
const seconds = z.number().int().nonnegative();

export const configSchema = z.strictObject({
  hostname: z.string().regex(/^[A-Za-z0-9.\-]+$/, "expected a host name").default(() => os.hostname()),
  domains: z.array(z.string().min(1).transform((d) => d.toLowerCase())).min(1).default(["localhost"]),
  data_dir: z.string().min(1).default("./data"),
  listen: z
    .strictObject({
      smtp: listenList.default(["127.0.0.1:2525"]),
      submission: listenList.default(["127.0.0.1:2587"]),
      submissions: listenList.default(["127.0.0.1:2465"]),
      pop3: listenList.default(["127.0.0.1:2110"]),
      pop3s: listenList.default(["127.0.0.1:2995"]),
    })
    .prefault({}),
  limits: z
    .strictObject({
      max_message_size: z.number().int().positive().default(10 * 1024 * 1024),
      max_recipients: z.number().int().positive().default(100),
      max_connections: z.number().int().positive().default(200),
      max_errors: z.number().int().positive().default(20),
      max_junk_commands: z.number().int().positive().default(100),
      command_timeout: seconds.positive().default(300),
      data_timeout: seconds.positive().default(600),
      shutdown_grace: seconds.default(30),
      /** Recipients of one message after aliases and lists are expanded. */
      max_expanded_recipients: z.number().int().positive().default(10000),
      /** Failed logins from one IP address within auth_failure_window before it is refused. */
      auth_failures_per_ip: z.number().int().positive().default(20),
      /** Failed logins for one account within auth_failure_window before it is refused. */
      auth_failures_per_account: z.number().int().positive().default(10),
      auth_failure_window: seconds.positive().default(600),
    })
    .prefault({}),
  smtp: z
    .strictObject({
      vrfy: z.boolean().default(true),
      expn: z.boolean().default(true),
      bare_line_endings: z.enum(["normalize", "reject"]).default("normalize"),
      forward_offsite: z.boolean().default(true),
      /** Seconds between "220-" and the final "220 "; a client talking in between is refused. */
      greet_pause: z.number().nonnegative().default(0),
      /** VRFY/EXPN by partial name or display name (not only by address). */
      vrfy_search: z.boolean().default(false),
      /** alice+tag@ reaches alice@; "" turns plus-addressing off. */
      recipient_delimiter: z.string().max(1).default("+"),
    })
    .prefault({}),
  pop3: z
    .strictObject({
      idle_timeout: seconds.positive().default(600),
      max_auth_failures: z.number().int().positive().default(3),
      auth_failure_delay: z.number().nonnegative().default(1),
    })
    .prefault({}),
  tls: z.strictObject({ cert: z.string().optional(), key: z.string().optional() }).prefault({}),
  delivery: z
    .strictObject({
      smarthost: z.string().optional(),
      smarthost_security: z.enum(["starttls", "tls", "none"]).default("starttls"),
      smarthost_username: z.string().optional(),
      smarthost_password: z.string().optional(),
      mx_port: z.number().int().min(1).max(65535).default(25),
      retry_schedule: z.array(seconds.positive()).min(1).default([300, 900, 1800, 3600, 7200, 14400]),
      max_queue_age: seconds.positive().default(5 * 24 * 3600),
    })
    .prefault({}),
  dns: z.strictObject({ servers: z.array(z.string()).default([]) }).prefault({}),
  log: z.strictObject({ level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info") }).prefault({}),
});

export type Config = z.output<typeof configSchema>;

/** Splits "host:port" / "[v6]:port" into parts for net.Server.listen. */
export function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(":");
  let host = addr.slice(0, i);
  if (host.startsWith("[")) host = host.slice(1, -1);
  return { host, port: Number(addr.slice(i + 1)) };
}
