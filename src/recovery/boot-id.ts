// Tells startup recovery whether the previous server died in this boot of the kernel or before a
// reboot: a killed process (SIGKILL, OOM, crash) leaves the page cache, so every rename and unlink it
// made is seen now, fsync'd or not; only a reboot (power loss, kernel crash) can lose them. Trusts
// Linux's /proc/sys/kernel/random/boot_id; elsewhere every start counts as a new boot (the safe side).
import fs from "node:fs/promises";
import path from "node:path";
import { fsyncDir, writeFileSynced } from "../mailbox/maildir.js";

/** "same": the previous server ran in this boot; "new": a reboot came since, or it cannot be told. */
export type BootKind = "same" | "new";

const KERNEL_BOOT_ID = "/proc/sys/kernel/random/boot_id";

/** The kernel's boot id, or null where there is none (not Linux, /proc not mounted). */
export async function currentBootId(): Promise<string | null> {
  try {
    const id = (await fs.readFile(KERNEL_BOOT_ID, "utf8")).trim();
    return id || null;
  } catch {
    return null;
  }
}

function recordFile(dataDir: string): string {
  return path.join(dataDir, "boot_id");
}

/** Compares the boot id the previous server recorded in data_dir with the current one. */
export async function bootKind(dataDir: string, current: string | null): Promise<BootKind> {
  if (current === null) return "new";
  const recorded = await fs.readFile(recordFile(dataDir), "utf8").then((t) => t.trim(), () => null);
  return recorded === current ? "same" : "new";
}

/** Records the current boot id in <data_dir>/boot_id durably (tmp file, fsync, rename, fsync data_dir). */
export async function recordBootId(dataDir: string, current: string | null): Promise<void> {
  const file = recordFile(dataDir);
  if (current === null) return; // every start is a new boot then
  const tmp = `${file}.tmp`;
  await writeFileSynced(tmp, current + "\n", "w");
  await fs.rename(tmp, file);
  await fsyncDir(dataDir);
}
