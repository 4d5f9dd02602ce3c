// A stand-in for net.Socket in unit tests of the wire code (SocketReader, ReplyQueue): the test
// pushes input chunks, and writes collect in `written` with a writableLength that only shrinks
// when the test says the peer read them (drain). No real network; trusts the test to drive it.
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";

export class FakeSocket extends EventEmitter {
  paused = false;
  timeout = 0;
  destroyed = false;
  ended = false;
  /** Everything written, in order. */
  readonly written: string[] = [];
  /** Bytes written and not yet "read by the peer" (see peerReads). */
  writableLength = 0;
  /** write() returns false above this, like a socket's highWaterMark. */
  highWaterMark = 16 * 1024;

  setTimeout(ms: number): void {
    this.timeout = ms;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  /** Input from the peer. */
  push(s: string | Buffer): void {
    this.emit("data", typeof s === "string" ? Buffer.from(s, "latin1") : s);
  }
  write(data: string | Buffer): boolean {
    const text = typeof data === "string" ? data : data.toString("latin1");
    this.written.push(text);
    this.writableLength += Buffer.byteLength(text, "latin1");
    return this.writableLength < this.highWaterMark;
  }
  /** The peer reads everything: the buffer empties and "drain" fires. */
  peerReads(): void {
    this.writableLength = 0;
    this.emit("drain");
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit("close");
  }
  asSocket(): Socket {
    return this as unknown as Socket;
  }
}
