// Reads a queued message file (stored with LF line ends by the spool, like every copy) back as SMTP
// content: CRLF line ends, in 64 KB pieces, never the whole file in memory. measure() gives what the
// client must know before sending: the size with CRLF (for SIZE=, RFC 1870) and whether any byte is
// 8-bit (BODY=8BITMIME, or a bounce when the next hop cannot take it). A bare LF becomes CRLF exactly as
// CrlfSizeCounter counts it (the size announced is the size sent). Trusts the file (the spool wrote it).
import fs from "node:fs";
import { CrlfSizeCounter } from "../mailbox/crlf-size.js";

const CHUNK = 64 * 1024;
const CR = 13, LF = 10;

export interface ContentFacts {
  /** Octets as sent, CRLF line ends (before dot-stuffing). */
  readonly size: number;
  /** Any octet ≥ 0x80: needs 8BITMIME (or SMTPUTF8) at the next hop. */
  readonly eightBit: boolean;
}

export async function measure(file: string): Promise<ContentFacts> {
  const counter = new CrlfSizeCounter();
  let eightBit = false;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: CHUNK }) as AsyncIterable<Buffer>) {
    counter.feed(chunk);
    if (!eightBit) for (const b of chunk) if (b >= 0x80) { eightBit = true; break; }
  }
  return { size: counter.size, eightBit };
}

/** The file's content with every bare LF written as CRLF, piece by piece. */
export function crlfContent(file: string): AsyncGenerator<Buffer> {
  return crlfChunks(fs.createReadStream(file, { highWaterMark: CHUNK }) as AsyncIterable<Buffer>);
}

/** LF-stored content (a file's chunks, or pieces in memory) with every bare LF written as CRLF. */
export async function* crlfChunks(chunks: AsyncIterable<Buffer> | Iterable<Buffer>): AsyncGenerator<Buffer> {
  let last = -1;
  for await (const chunk of chunks) {
    if (chunk.length === 0) continue;
    const parts: Buffer[] = [];
    let from = 0;
    for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, i + 1)) {
      const before = i > 0 ? chunk[i - 1] : last;
      if (before === CR) continue;
      parts.push(chunk.subarray(from, i), CRLF_BYTES);
      from = i + 1;
    }
    parts.push(chunk.subarray(from));
    last = chunk[chunk.length - 1]!;
    yield parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
}

const CRLF_BYTES = Buffer.from("\r\n");
