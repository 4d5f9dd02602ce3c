// Property tests (fast-check) of the wire code: DotDecoder against a plain reference unstuffer, and
// SocketReader line splitting, both with input cut at arbitrary chunk boundaries. Seeded and
// bounded (numRuns), so they run in well under a second and a failure reproduces from its seed.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { FakeSocket } from "../testing/fake-socket.js";
import { DotDecoder } from "./dot-decoder.js";
import { SocketReader } from "./socket-reader.js";

const SEED = 7;

/** Cuts buf into chunks of the given sizes (cycled), as the network might deliver it. */
function cut(buf: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let pos = 0, k = 0; pos < buf.length; k++) {
    const n = sizes.length ? sizes[k % sizes.length]! : buf.length;
    out.push(buf.subarray(pos, pos + n));
    pos += n;
  }
  return out;
}

/**
 * The reference: RFC 5321 §4.5.2 read literally, byte by byte. A line starts only after a real CRLF
 * (or at the start); there ".CRLF" ends the data and a leading "." is dropped. Bare CR and
 * bare LF are stored as CRLF ("normalize") and never start a line.
 */
function referenceDecode(input: string): { content: string; rest: string; bare: boolean } | null {
  let out = "";
  let bare = false;
  let lineStart = true;
  for (let i = 0; i < input.length; ) {
    if (lineStart && input.startsWith(".\r\n", i)) return { content: out, rest: input.slice(i + 3), bare };
    // "." then a bare LF keeps its dot (a bare-LF client's line of one dot, not stuffing).
    if (lineStart && input[i] === "." && input[i + 1] !== "\n") {
      i++;
      lineStart = false;
      continue;
    }
    if (input.startsWith("\r\n", i)) {
      out += "\r\n";
      i += 2;
      lineStart = true;
    } else if (input[i] === "\r" || input[i] === "\n") {
      out += "\r\n";
      bare = true;
      i++;
      lineStart = false;
    } else {
      out += input[i];
      i++;
      lineStart = false;
    }
  }
  return null;
}

const dataToken = fc.constantFrom("a", "b c", ".", "..", "\r", "\n", "\r\n", ".\r\n", "\r\n.", "\r\n.\r\n", "\n.\n", "\r.\r", "\u00e9");
const chunkSizes = fc.array(fc.integer({ min: 1, max: 9 }), { maxLength: 6 });

test("DotDecoder equals the reference unstuffer for any content and any chunk boundaries", () => {
  fc.assert(
    fc.property(fc.array(dataToken, { maxLength: 40 }), fc.string({ maxLength: 10 }), chunkSizes, (tokens, tail, sizes) => {
      const input = tokens.join("") + "\r\n.\r\n" + tail;
      const expected = referenceDecode(input)!;
      const d = new DotDecoder("normalize");
      const pieces: Buffer[] = [];
      let consumedTotal = 0;
      let done = false;
      for (const chunk of cut(Buffer.from(input, "latin1"), sizes)) {
        // The reader hands the unconsumed rest back with the next chunk; model that.
        let c = chunk;
        while (c.length && !done) {
          const r = d.feed(c, (p) => pieces.push(Buffer.from(p)));
          consumedTotal += r.consumed;
          done = r.done;
          c = c.subarray(r.consumed);
          if (!done && r.consumed === 0) break;
        }
        if (done) break;
      }
      assert.equal(done, true);
      const content = Buffer.concat(pieces).toString("latin1");
      assert.equal(content, expected.content);
      assert.equal(d.size, Buffer.byteLength(expected.content, "latin1"));
      assert.equal(input.slice(consumedTotal), expected.rest);
      assert.equal(d.bareSeen, expected.bare);
    }),
    { seed: SEED, numRuns: 400 },
  );
});

test("SocketReader returns exactly the lines sent, CRLF or LF ended, however the bytes are cut", async () => {
  const MAX = 20;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, "")), fc.boolean()), { maxLength: 15 }),
      chunkSizes,
      async (lines, sizes) => {
        const sock = new FakeSocket();
        const reader = new SocketReader(sock.asSocket(), () => undefined);
        const wire = Buffer.from(lines.map(([l, crlf]) => l + (crlf ? "\r\n" : "\n")).join(""), "utf8");
        for (const chunk of cut(wire, sizes)) sock.push(chunk);
        sock.emit("end");
        const got: (string | "too-long")[] = [];
        for (;;) {
          const line = await reader.readLine(MAX);
          if (line === null) break;
          got.push(line === "too-long" ? line : line.toString("utf8"));
        }
        assert.deepEqual(
          got,
          lines.map(([l]) => (Buffer.byteLength(l) > MAX ? "too-long" : l)),
        );
      },
    ),
    { seed: SEED, numRuns: 300 },
  );
});
