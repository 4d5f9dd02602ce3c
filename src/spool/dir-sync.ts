// Group commit for folder fsyncs: many messages renamed into the same folder at about the same
// time share one fsync, which still starts after every one of those renames (so each is durable).
// Every fsync opens the folder by its path: no cached handle can outlive a removed or replaced folder.
import fs from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";

interface DirState {
  inflight: Promise<void> | null;
  queued: Promise<void> | null;
}

export class DirSyncer {
  private readonly states = new Map<string, DirState>();

  /** syncHandle: what is done with the open folder (tests observe which folder it is). */
  constructor(private readonly syncHandle: (fh: FileHandle) => Promise<void> = (fh) => fh.sync()) {}

  /** Resolves once an fsync of dir that began after this call has completed. */
  sync(dir: string): Promise<void> {
    let s = this.states.get(dir);
    if (!s) this.states.set(dir, (s = { inflight: null, queued: null }));
    const state = s;
    if (!state.inflight) {
      state.inflight = this.fsync(dir).finally(() => {
        state.inflight = null;
        if (!state.queued) this.states.delete(dir);
      });
      return state.inflight;
    }
    // An fsync is running and may have started before our rename: join the next one.
    if (!state.queued) {
      state.queued = state.inflight
        .catch(() => undefined)
        .then(() => {
          state.queued = null;
          this.states.set(dir, state);
          return this.sync(dir);
        });
    }
    return state.queued;
  }

  private async fsync(dir: string): Promise<void> {
    const fh = await fs.open(dir, "r");
    try {
      await this.syncHandle(fh);
    } finally {
      await fh.close();
    }
  }
}
