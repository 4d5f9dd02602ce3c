// petrel queue list (also `mailq`, and bin/petrel run through a link named "mailq"): what waits to leave.
// Two sources, read without the server: data_dir/maildrop/new (sendmail's drops, before pickup) and
// data_dir/queue (queue/queue-scan.ts: envelopes with each recipient's state from queue/state.db),
// oldest first. An entry it cannot parse is shown as such rather than hiding the rest. Also queue
// show/delete/bounce/flush: through the running server's control socket, or directly when it is down.
import fsSync from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { controlRequest } from "../control/control-socket.js";
import { UsageError } from "../core/errors.js";
import { listMaildrop, readDroppedEnvelope } from "../queue/maildrop.js";
import { deleteEntry, giveUp, readEntry, scanQueue, type QueuedMessage } from "../queue/queue-scan.js";
import { envelopeOnly, QueueState, type RecipientStatus, type StatusSource } from "../queue/queue-state.js";
import { CONFIG_HELP, loadCliConfig, oneLineErrors, type ConfigOption } from "./context.js";

/** One line of the table, and one indented line per recipient. */
export interface QueueListing {
  readonly id: string;
  readonly where: "maildrop" | "queue";
  readonly size: number | null;
  readonly arrived: Date | null;
  readonly sender: string;
  readonly recipients: readonly { readonly to: string; readonly state: string }[];
}

export function registerQueue(program: Command): void {
  const queue = oneLineErrors(program.command("queue").description("show the outbound queue"));
  queue
    .command("list")
    .description("list messages waiting in the maildrop (from sendmail) and in the queue, with each recipient's state")
    .option("--config <file>", CONFIG_HELP)
    .action(async (opts: ConfigOption) => {
      const config = loadCliConfig(opts);
      const listings = [...(await maildropListings(config.data_dir)), ...(await queueListings(path.join(config.data_dir, "queue")))];
      process.stdout.write(formatQueueList(listings, new Date()));
    });
  queue
    .command("show <id>")
    .description("one queued message: its envelope, each recipient's state and last reply, and its headers")
    .option("--config <file>", CONFIG_HELP)
    .action(async (id: string, opts: ConfigOption) => {
      const config = loadCliConfig(opts);
      process.stdout.write(await showEntry(path.join(config.data_dir, "queue"), id));
    });
  queue
    .command("delete <id>")
    .description("remove a message from the queue without sending it or a bounce (through the running server, else directly)")
    .option("--config <file>", CONFIG_HELP)
    .action(async (id: string, opts: ConfigOption) => {
      const config = loadCliConfig(opts);
      checkId(id);
      const queueDir = path.join(config.data_dir, "queue");
      const answer = await controlRequest(config.data_dir, { cmd: "delete", id });
      if (answer === "not-running") {
        await onEntryDirectly(queueDir, id, async (state) => {
          if (!(await deleteEntry(queueDir, state, id))) throw new UsageError(`no queue entry ${id}`);
        });
      } else if (!answer.ok) throw new UsageError(answer.error);
      process.stdout.write(`deleted ${id}\n`);
    });
  queue
    .command("bounce <id>")
    .description("give up on a queued message: its waiting recipients fail now and the sender gets a bounce (through the running server, else at its next start)")
    .option("--config <file>", CONFIG_HELP)
    .action(async (id: string, opts: ConfigOption) => {
      const config = loadCliConfig(opts);
      checkId(id);
      const queueDir = path.join(config.data_dir, "queue");
      const answer = await controlRequest(config.data_dir, { cmd: "bounce", id });
      if (answer === "not-running") {
        await onEntryDirectly(queueDir, id, async (state) => {
          const m = await readEntry(queueDir, state, id);
          if (!m) throw new UsageError(`no queue entry ${id}`);
          const returned = giveUp(state, m);
          process.stdout.write(`returned ${id} to <${m.envelope.sender}> for ${returned.length} recipient${returned.length === 1 ? "" : "s"}; the bounce is sent when the server starts\n`);
        });
        return;
      }
      if (!answer.ok) throw new UsageError(answer.error);
      const n = Array.isArray(answer.recipients) ? answer.recipients.length : 0;
      process.stdout.write(`returned ${id} for ${n} recipient${n === 1 ? "" : "s"}; the bounce is on its way to the sender\n`);
    });
  queue
    .command("flush [domain]")
    .description("ask the running server to try every waiting message now (or only those for DOMAIN)")
    .option("--config <file>", CONFIG_HELP)
    .action(async (domain: string | undefined, opts: ConfigOption) => {
      const config = loadCliConfig(opts);
      const answer = await controlRequest(config.data_dir, { cmd: "flush", ...(domain ? { domain: domain.toLowerCase() } : {}) });
      if (answer === "not-running") throw new UsageError("the server is not running (no control socket in data_dir); the queue is sent when it starts");
      if (!answer.ok) throw new UsageError(`the server refused: ${answer.error}`);
      const n = Number(answer.messages ?? 0);
      process.stdout.write(`${n} message${n === 1 ? "" : "s"} ${domain ? `for ${domain.toLowerCase()} ` : ""}queued for delivery now\n`);
    });
}

/** The text of `queue show ID`: envelope, recipients with their current state, then the message's headers. */
export async function showEntry(queueDir: string, id: string): Promise<string> {
  checkId(id);
  const m = await withState(queueDir, (state) => readEntry(queueDir, state, id));
  if (!m) throw new UsageError(`no queue entry ${id}`);
  const env = m.envelope;
  const l = await listing(m);
  let text = `id: ${id}\nsender: <${env.sender}>\nreceived: ${env.received}\nsize: ${l.size ?? "?"}\n`;
  if (env.ret || env.envid) text += `dsn: ${[env.ret ? `RET=${env.ret}` : "", env.envid ? `ENVID=${env.envid}` : ""].filter(Boolean).join(" ")}\n`;
  text += "recipients:\n";
  for (const r of l.recipients) text += `    ${r.to}  ${r.state}\n`;
  text += "headers:\n";
  const fh = await fs.open(m.messagePath, "r").catch(() => null);
  if (!fh) return `${text}    (message file missing)\n`;
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, 0);
    const head = buffer.subarray(0, bytesRead).toString("utf8");
    const end = head.search(/\r?\n\r?\n/);
    for (const line of (end >= 0 ? head.slice(0, end) : head).split(/\r?\n/)) text += `    ${line.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "?")}\n`;
  } finally {
    await fh.close();
  }
  return text;
}

function checkId(id: string): void {
  if (!/^[A-Za-z0-9]{1,64}$/.test(id)) throw new UsageError(`not a queue id: ${JSON.stringify(id)}`);
}

export async function maildropListings(dataDir: string): Promise<QueueListing[]> {
  const out: QueueListing[] = [];
  for (const e of await listMaildrop(dataDir)) {
    try {
      const { envelope } = await readDroppedEnvelope(e.path);
      const arrived = new Date(envelope.received);
      out.push({
        id: e.id,
        where: "maildrop",
        size: e.size,
        arrived: Number.isNaN(arrived.getTime()) ? e.mtime : arrived,
        sender: envelope.sender,
        recipients: envelope.recipients.map((to) => ({ to, state: "waiting for pickup" })),
      });
    } catch (err) {
      out.push({ id: e.id, where: "maildrop", size: e.size, arrived: e.mtime, sender: "?", recipients: [{ to: "?", state: `unreadable: ${(err as Error).message}` }] });
    }
  }
  return out;
}

export async function queueListings(queueDir: string): Promise<QueueListing[]> {
  return withState(queueDir, async (state) => {
    const out: QueueListing[] = [];
    const bad = (file: string, err: unknown) => {
      out.push({ id: path.basename(file, ".json"), where: "queue", size: null, arrived: null, sender: "?", recipients: [{ to: "?", state: `unreadable: ${(err as Error).message}` }] });
    };
    for (const m of await scanQueue(queueDir, state, bad)) out.push(await listing(m));
    return out;
  });
}

async function listing(m: QueuedMessage): Promise<QueueListing> {
  const { envelope } = m;
  const size = await fs.stat(m.messagePath).then((st) => st.size, () => null);
  const arrived = new Date(envelope.received);
  const recipients = m.recipients.map((r) => ({ to: r.to, state: recipientState(r) }));
  return { id: envelope.id, where: "queue", size, arrived: Number.isNaN(arrived.getTime()) ? null : arrived, sender: envelope.sender, recipients };
}

/**
 * queue delete/bounce with the server stopped: fn with the relay's state, for an entry that exists.
 * The entry is checked first: opening the state would create queue/state.db (as whoever runs this).
 */
async function onEntryDirectly(queueDir: string, id: string, fn: (state: QueueState) => Promise<void>): Promise<void> {
  if (!fsSync.existsSync(path.join(queueDir, "envelopes", `${id}.json`))) throw new UsageError(`no queue entry ${id}`);
  const state = new QueueState(queueDir);
  try {
    await fn(state);
  } finally {
    state.close();
  }
}

/**
 * Runs fn with the relay's state (queue/state.db) when it exists, else with the envelopes alone: a
 * listing never creates the database (it may run as another user than the server).
 */
async function withState<T>(queueDir: string, fn: (state: StatusSource) => Promise<T>): Promise<T> {
  if (!fsSync.existsSync(path.join(queueDir, "state.db"))) return fn(envelopeOnly);
  const state = new QueueState(queueDir);
  try {
    return await fn(state);
  } finally {
    state.close();
  }
}

/** "scheduled", "deferred (3 attempts, next 2026-…Z): 451 4.3.0 try later", "delivered (1 attempt): 250 ...". */
export function recipientState(r: RecipientStatus): string {
  const attempts = `${r.attempts} attempt${r.attempts === 1 ? "" : "s"}`;
  const next = r.nextAttempt !== null ? `, next ${new Date(r.nextAttempt).toISOString()}` : "";
  const s = r.state;
  if (s.kind === "scheduled") return `scheduled (${attempts}${next})`;
  const replyText = `${s.reply.code}${s.reply.enhanced ? ` ${s.reply.enhanced}` : ""} ${s.reply.lines.join(" ")}`.trim();
  return s.kind === "deferred" ? `deferred (${attempts}${next}): ${replyText}` : `${s.kind} (${attempts}): ${replyText}`;
}

/** The table: a header line, one line per message and one indented line per recipient. */
export function formatQueueList(listings: readonly QueueListing[], now: Date): string {
  if (listings.length === 0) return "Mail queue is empty\n";
  const rows = listings.map((l) => [l.id, l.where, l.size === null ? "?" : String(l.size), l.arrived ? age(now.getTime() - l.arrived.getTime()) : "?", l.sender === "" ? "<>" : l.sender]);
  const head = ["ID", "WHERE", "SIZE", "AGE", "SENDER"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  let text = `${line(head)}\n`;
  listings.forEach((l, k) => {
    text += `${line(rows[k]!)}\n`;
    for (const r of l.recipients) text += `    ${r.to}  ${r.state}\n`;
  });
  const n = listings.length;
  return `${text}-- ${n} message${n === 1 ? "" : "s"}\n`;
}

function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}
