// Group commit for folder fsyncs: many messages renamed into the same folder at about the same
// time share one fsync, which still starts after every one of those renames (so each is durable).
// Folder handles are kept open (bounded) so a sync costs one fsync, not open+fsync+close.
import fs from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";

interface DirState {
  inflight: Promise<void> | null;
  queued: Promise<void> | null;
}

const MAX_OPEN = 256;

export class DirSyncer {
  private readonly states = new Map<string, DirState>();
  private readonly handles = new Map<string, Promise<FileHandle>>();

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
    let h = this.handles.get(dir);
    if (!h) {
      if (this.handles.size >= MAX_OPEN) this.evictOne();
      h = fs.open(dir, "r");
      this.handles.set(dir, h);
      h.catch(() => this.handles.delete(dir));
    }
    try {
      await (await h).sync();
    } catch (err) {
      // A stale handle (folder removed and made again) must not be reused.
      this.handles.delete(dir);
      (await h.catch(() => null))?.close().catch(() => undefined);
      throw err;
    }
  }

  private evictOne(): void {
    const [dir, h] = this.handles.entries().next().value as [string, Promise<FileHandle>];
    this.handles.delete(dir);
    void h.then((fh) => fh.close()).catch(() => undefined);
  }

  async close(): Promise<void> {
    const hs = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(hs.map((h) => h.then((fh) => fh.close()).catch(() => undefined)));
  }
}
