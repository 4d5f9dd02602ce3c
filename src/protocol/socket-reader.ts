// Reads a line-oriented protocol from a socket on Buffers: command lines, exact byte counts (BDAT)
// and dot-terminated data (through DotDecoder). Before it waits for the network it calls onWait,
// so a session flushes all pipelined replies in one write (RFC 2920) instead of one per line.
// Trusts nothing: lines are bounded, a slow or silent peer times out, buffered input is capped.
import type { Socket } from "node:net";
import type { DotDecoder } from "./dot-decoder.js";

export type LineResult = Buffer | "too-long" | null;

export class ReaderClosed extends Error {
  constructor() {
    super("connection closed");
  }
}
export class ReaderTimeout extends Error {
  constructor() {
    super("timed out waiting for the client");
  }
}
export class ReaderInterrupted extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

const HIGH_WATER = 256 * 1024;
const EMPTY = Buffer.alloc(0);

export class SocketReader {
  private buf: Buffer = EMPTY;
  private pos = 0;
  /**
   * Chunks received after buf, not yet looked at. Joining every chunk onto the unread rest as it
   * arrives would copy the same bytes again and again while a slow sink (the disk) is awaited; DATA
   * and BDAT instead take the chunks one by one, and only readLine joins them (lines are short).
   */
  private queue: Buffer[] = [];
  private queued = 0;
  private scanned = 0; // bytes after pos already searched for LF
  private ended = false;
  private timedOut = false;
  private interrupted: string | null = null;
  private wake: (() => void) | null = null;
  private paused = false;
  private socket!: Socket;
  private readonly handlers = {
    data: (chunk: Buffer) => this.onData(chunk),
    end: () => this.onEnd(),
    close: () => this.onEnd(),
    error: () => this.onEnd(),
    timeout: () => {
      this.timedOut = true;
      this.notify();
    },
  };

  constructor(
    socket: Socket,
    private readonly onWait: () => void,
  ) {
    this.attach(socket);
  }

  /** Sets the idle timeout for every following wait. */
  setTimeout(ms: number): void {
    this.socket.setTimeout(ms);
  }

  /** Makes the current or next wait throw ReaderInterrupted (server shutdown). */
  interrupt(reason: string): void {
    this.interrupted = reason;
    this.notify();
  }

  /** Bytes received but not yet consumed. */
  get buffered(): number {
    return this.buf.length - this.pos + this.queued;
  }

  /**
   * Stops listening to the socket and discards everything buffered (before a TLS handshake: plaintext
   * sent after STARTTLS must never be read as commands, RFC 3207 §4.2, CVE-2011-0411).
   */
  detach(): void {
    if (this.socket) for (const [ev, fn] of Object.entries(this.handlers)) this.socket.off(ev, fn as never);
    this.buf = EMPTY;
    this.pos = this.scanned = 0;
    this.queue = [];
    this.queued = 0;
    this.paused = false;
  }

  /** Reads from another socket from now on (the TLS socket after a handshake); buffered input is discarded. */
  attach(socket: Socket): void {
    this.detach();
    this.socket = socket;
    this.ended = false;
    for (const [ev, fn] of Object.entries(this.handlers)) socket.on(ev, fn as never);
  }

  /**
   * Waits up to ms for the peer to send anything, without consuming it (an SMTP greeting pause).
   * "input" when bytes arrived, "closed" when the peer went away silently, "quiet" otherwise.
   */
  async waitForInput(ms: number): Promise<"input" | "closed" | "quiet"> {
    const deadline = Date.now() + ms;
    while (this.buffered === 0 && !this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) return "quiet";
      this.check();
      // setTimeout holds at most 2^31-1 ms; a longer pause simply goes round the loop again.
      const timer = setTimeout(() => this.notify(), Math.min(left, 2 ** 31 - 1));
      await new Promise<void>((resolve) => (this.wake = resolve));
      clearTimeout(timer);
      this.check();
    }
    return this.buffered > 0 ? "input" : "closed";
  }

  /** Reads one line (LF or CRLF terminated, terminator removed). Null at end of stream. */
  async readLine(max: number): Promise<LineResult> {
    let discarding = false;
    for (;;) {
      this.join();
      const start = this.pos + this.scanned;
      const lf = this.buf.indexOf(LF, start);
      if (lf >= 0) {
        const endOfLine = lf > this.pos && this.buf[lf - 1] === CR ? lf - 1 : lf;
        const line = this.buf.subarray(this.pos, endOfLine);
        this.consume(lf + 1 - this.pos);
        if (discarding || line.length > max) return "too-long";
        return line;
      }
      this.scanned = this.buf.length - this.pos;
      // max + 1: the CR of a line of exactly max octets may arrive before its LF.
      if (this.scanned > max + 1) {
        // Too long: drop what we have and keep dropping up to the next LF.
        discarding = true;
        this.consume(this.buffered);
      }
      if (this.ended) {
        this.consume(this.buffered); // a partial last line is dropped
        return null;
      }
      await this.waitForData();
    }
  }

  /** Passes exactly n bytes to sink (BDAT, RFC 3030), in pieces; never buffers them all. */
  async readExact(n: number, sink: (piece: Buffer) => void | Promise<void>): Promise<void> {
    while (n > 0) {
      if (!this.next()) {
        if (this.ended) throw new ReaderClosed();
        await this.waitForData();
        continue;
      }
      const take = Math.min(n, this.buf.length - this.pos);
      const piece = this.buf.subarray(this.pos, this.pos + take);
      this.consume(take);
      n -= take;
      await sink(piece);
    }
  }

  /** Decodes DATA content up to and including <CRLF>.<CRLF>, passing decoded pieces to sink. */
  async readDotData(decoder: DotDecoder, sink: (pieces: Buffer[]) => void | Promise<void>): Promise<void> {
    for (;;) {
      if (!this.next()) {
        if (this.ended) throw new ReaderClosed();
        await this.waitForData();
        continue;
      }
      const pieces: Buffer[] = [];
      const { consumed, done } = decoder.feed(this.buf.subarray(this.pos), (p) => pieces.push(p));
      this.consume(consumed);
      if (pieces.length) await sink(pieces);
      if (done) return;
    }
  }

  /** Makes buf hold unread bytes when any were received, by moving to the next chunk (no copy). */
  private next(): boolean {
    while (this.pos >= this.buf.length && this.queue.length) {
      this.buf = this.queue.shift()!;
      this.pos = 0;
      this.queued -= this.buf.length;
    }
    return this.pos < this.buf.length;
  }

  /** Puts everything received into buf, for a line that may span chunks. */
  private join(): void {
    if (this.queue.length === 0) return;
    const rest = this.buf.subarray(this.pos);
    this.buf = rest.length === 0 && this.queue.length === 1 ? this.queue[0]! : Buffer.concat([rest, ...this.queue]);
    this.pos = 0;
    this.queue = [];
    this.queued = 0;
  }

  private consume(n: number): void {
    this.pos += n;
    this.scanned = 0;
    if (this.pos >= this.buf.length) {
      this.buf = EMPTY;
      this.pos = 0;
    }
    if (this.paused && this.buffered < HIGH_WATER / 2) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private onData(chunk: Buffer): void {
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (this.buffered >= HIGH_WATER && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    this.notify();
  }

  private onEnd(): void {
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async waitForData(): Promise<void> {
    this.check();
    this.onWait();
    await new Promise<void>((resolve) => (this.wake = resolve));
    this.check();
  }

  private check(): void {
    if (this.interrupted !== null) throw new ReaderInterrupted(this.interrupted);
    if (this.timedOut) {
      this.timedOut = false;
      throw new ReaderTimeout();
    }
  }
}

const LF = 10;
const CR = 13;
