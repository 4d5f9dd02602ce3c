// Streams one message file to a socket as a POP3 multi-line body (RFC 1939 §3) through a
// MessageEncoder, with backpressure: only a read chunk or two is ever in memory, however large the
// message. Trusts the socket's drain/close/timeout events; a closed or stalled peer ends it with an error.
import type { FileHandle } from "node:fs/promises";
import type { Socket } from "node:net";
import { waitForDrain } from "../protocol/socket-drain.js";
import { ReaderClosed } from "../protocol/socket-reader.js";
import type { MessageEncoder } from "./message-encoder.js";

const READ_CHUNK = 64 * 1024;

/** Sends the encoded file and the final ".CRLF"; stops reading early when the encoder is done (TOP). */
export async function streamMessage(socket: Socket, fh: FileHandle, encoder: MessageEncoder): Promise<void> {
  for await (const chunk of fh.createReadStream({ highWaterMark: READ_CHUNK, autoClose: false })) {
    const out = encoder.feed(chunk as Buffer);
    if (out.length) await writeWithBackpressure(socket, out);
    if (encoder.done) break;
  }
  await writeWithBackpressure(socket, encoder.end());
}

/** Writes, then waits for "drain" when the socket's buffer is full. */
export async function writeWithBackpressure(socket: Socket, buf: Buffer): Promise<void> {
  if (socket.destroyed) throw new ReaderClosed();
  if (!socket.write(buf)) await waitForDrain(socket);
}
