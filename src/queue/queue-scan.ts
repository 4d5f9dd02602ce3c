// Reads the queue at start and whenever the runner asks: every committed entry (envelopes/<id>.json
// with its messages/<id>.eml) with each recipient's current state from QueueState, and which recipients
// have work due; removes entries (finished, or deleted by the administrator). Removal
// takes the envelope first (an .eml without envelope is swept by startup recovery), then the message,
// then the state rows, so a crash at any point leaves nothing that would be delivered again.
import fs from "node:fs/promises";
import path from "node:path";
import { fsyncDir } from "../mailbox/maildir.js";
import { reply } from "../core/reply.js";
import { wantsNotice, type QueueEnvelope } from "./queue-entry.js";
import { isFinal, type QueueState, type RecipientStatus, type StatusSource } from "./queue-state.js";

export interface QueuedMessage {
  readonly envelope: QueueEnvelope;
  readonly messagePath: string;
  readonly recipients: readonly RecipientStatus[];
}

/** Every committed queue entry, oldest first; envelopes that do not parse are reported, not thrown. */
export async function scanQueue(queueDir: string, state: StatusSource, onBad: (file: string, err: unknown) => void = () => undefined): Promise<QueuedMessage[]> {
  let names: string[];
  try {
    names = await fs.readdir(path.join(queueDir, "envelopes"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const out: QueuedMessage[] = [];
  for (const name of names) {
    if (!name.endsWith(".json")) continue;
    const file = path.join(queueDir, "envelopes", name);
    try {
      const envelope = JSON.parse(await fs.readFile(file, "utf8")) as QueueEnvelope;
      if (envelope.version !== 2 || `${envelope.id}.json` !== name) throw new Error(`not a version 2 envelope for ${name}`);
      out.push({ envelope, messagePath: path.join(queueDir, "messages", `${envelope.id}.eml`), recipients: state.status(envelope) });
    } catch (err) {
      onBad(file, err);
    }
  }
  return out.sort((a, b) => a.envelope.received.localeCompare(b.envelope.received) || a.envelope.id.localeCompare(b.envelope.id));
}

/** Recipients whose next attempt is due at `now`. */
export function dueRecipients(m: QueuedMessage, now: number): RecipientStatus[] {
  return m.recipients.filter((r) => !isFinal(r) && r.nextAttempt !== null && r.nextAttempt <= now);
}

/**
 * Removes entries in one pass: every envelope, then one fsync of the envelopes folder (once the rows
 * are gone, a resurrected envelope would look like a new message and be sent again), every message
 * file, then the rows in one transaction. Missing files are fine (a second removal is harmless).
 */
export async function removeEntries(queueDir: string, state: QueueState, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  const unlink = async (file: string) => {
    try {
      await fs.unlink(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  };
  for (const id of ids) await unlink(path.join(queueDir, "envelopes", `${id}.json`));
  await fsyncDir(path.join(queueDir, "envelopes"));
  for (const id of ids) await unlink(path.join(queueDir, "messages", `${id}.eml`));
  state.forgetAll(ids);
}

/** `petrel queue delete ID` (from the CLI or the control socket): false when there is no such entry. */
export async function deleteEntry(queueDir: string, state: QueueState, id: string): Promise<boolean> {
  try {
    await fs.access(path.join(queueDir, "envelopes", `${id}.json`));
  } catch {
    return false;
  }
  await removeEntries(queueDir, state, [id]);
  return true;
}

/** The reply a recipient returned by the administrator fails with (its bounce's Diagnostic-Code). */
export const RETURNED = reply(550, "5.0.0", "returned to the sender by the postmaster (petrel queue bounce)");

/**
 * `petrel queue bounce ID`: every recipient not yet final fails now with RETURNED and is owed a bounce
 * (unless its NOTIFY says otherwise, or the sender is <>); the runner sends it. Returns those recipients.
 */
export function giveUp(state: QueueState, m: QueuedMessage): string[] {
  const current = state.status(m.envelope);
  const waiting = current.filter((r) => !isFinal(r));
  const notify = m.envelope.sender === "" ? [] : waiting.filter((r) => wantsNotice(m.envelope, r.to, "FAILURE")).map((r) => r.to);
  state.giveUp(m.envelope.id, waiting, RETURNED, notify);
  return waiting.map((r) => r.to);
}

/** One committed entry by id, or null (for the queue commands that name one message). */
export async function readEntry(queueDir: string, state: StatusSource, id: string): Promise<QueuedMessage | null> {
  let envelope: QueueEnvelope;
  try {
    envelope = JSON.parse(await fs.readFile(path.join(queueDir, "envelopes", `${id}.json`), "utf8")) as QueueEnvelope;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  if (envelope.version !== 2 || envelope.id !== id) throw new Error(`envelopes/${id}.json is not a version 2 envelope`);
  return { envelope, messagePath: path.join(queueDir, "messages", `${id}.eml`), recipients: state.status(envelope) };
}
