// Waits for a socket's write buffer to drain: the one backpressure primitive that reply output and
// streamed message bodies share. Trusts the socket's drain/close/timeout events; a peer that closes
// or stops reading until the idle timeout ends the wait with ReaderClosed or ReaderTimeout.
import type { Socket } from "node:net";
import { ReaderClosed, ReaderTimeout } from "./socket-reader.js";

/** Resolves on the socket's next "drain"; rejects when it closes or times out first. */
export function waitForDrain(socket: Socket): Promise<void> {
  if (socket.destroyed) return Promise.reject(new ReaderClosed());
  return new Promise<void>((resolve, reject) => {
    const settle = (err: Error | null) => {
      socket.off("drain", onDrain).off("close", onClose).off("timeout", onTimeout);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => settle(null);
    const onClose = () => settle(new ReaderClosed());
    // A client that stops reading is as idle as one that stops writing (the socket's idle timeout).
    const onTimeout = () => settle(new ReaderTimeout());
    socket.on("drain", onDrain).on("close", onClose).on("timeout", onTimeout);
  });
}
