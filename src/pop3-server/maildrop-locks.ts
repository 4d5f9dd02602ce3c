// The exclusive lock on a maildrop (RFC 1939 §8: one session at a time, else -ERR [IN-USE] per
// RFC 2449 §8.1.1). One server process owns data_dir, so an in-process table is enough; the CLI
// never touches mailboxes. A lock is released by calling its release(), which is safe to repeat.

export interface MaildropLock {
  readonly address: string;
  release(): void;
}

export class MaildropLocks {
  private readonly held = new Set<string>();

  /** Takes the lock for a canonical address, or returns null when another session holds it. */
  tryAcquire(address: string): MaildropLock | null {
    const key = address.toLowerCase();
    if (this.held.has(key)) return null;
    this.held.add(key);
    let released = false;
    return {
      address: key,
      release: () => {
        if (released) return;
        released = true;
        this.held.delete(key);
      },
    };
  }

  isLocked(address: string): boolean {
    return this.held.has(address.toLowerCase());
  }

  get size(): number {
    return this.held.size;
  }
}
