// Fault injection for crash and disk-error tests of the commit path. Inert unless PETREL_FAULT is
// set, e.g. PETREL_FAULT="after-tmp-fsync:ENOSPC" or "after-first-rename:kill" (several: comma
// separated). "kill" is SIGKILL of this process; an errno name makes the step fail with that code.

export const FAULT_POINTS = [
  "after-open", // every copy exists in tmp/
  "after-write", // content written to every copy
  "after-tmp-fsync", // every copy fsync'd and closed in tmp/
  "after-queue-write", // queue message and envelope fsync'd under temporary names
  "after-mark", // one copy: renamed to its committed name (",C") in tmp/, not yet durable
  "after-mark-fsync", // one copy: tmp/ fsync'd, the commit is durable; next is the ack (rename into new/)
  "after-journal", // several files: commit journal durable
  "after-first-rename", // several files: the first copy is visible (not acked: no 250 yet)
  "after-renames", // several files: every copy is visible
  "after-folder-fsync", // several files: every folder entry is durable; next is the ack (journal unlink)
  "after-ack", // acked, and the 250 already handed to the socket (kill only)
] as const;

export type FaultPoint = (typeof FAULT_POINTS)[number];

type FaultAction = { readonly kind: "kill" } | { readonly kind: "error"; readonly code: string };

function parse(spec: string | undefined): Map<FaultPoint, FaultAction> {
  const faults = new Map<FaultPoint, FaultAction>();
  for (const item of (spec ?? "").split(",")) {
    const [point, action] = item.trim().split(":");
    if (!point || !action || !(FAULT_POINTS as readonly string[]).includes(point)) continue;
    faults.set(point as FaultPoint, action === "kill" ? { kind: "kill" } : { kind: "error", code: action });
  }
  return faults;
}

const faults = parse(process.env.PETREL_FAULT);

/** Fails or kills here when PETREL_FAULT names this point; otherwise does nothing. */
export function fault(point: FaultPoint): void {
  if (faults.size === 0) return;
  const action = faults.get(point);
  if (!action) return;
  if (action.kind === "kill") process.kill(process.pid, "SIGKILL");
  else throw Object.assign(new Error(`${action.code}: injected fault at ${point}`), { code: action.code });
}
