// A MessageCheck for end-to-end tests and the bench, inert unless PETREL_TEST_CHECK=1 is set (like
// PETREL_FAULT): it reads the content as it streams and the staged copy at the end, and decides by a
// marker in the content: "[test-junk]" → junk, "[test-reject]" → 550 5.7.1, otherwise accept. Each
// stored copy gets "X-Petrel-Test-Check: <verdict>; streamed=<octets>; staged=<octets>". Real checks
// (SPF/DKIM/DMARC, rspamd, Bayes) never look like this; it exists so a test can drive every verdict.
import { reply } from "../core/reply.js";
import type { CheckVerdict, MessageCheck } from "../trust/message-check.js";

const MARKERS = { "[test-junk]": "junk", "[test-reject]": "reject" } as const;
const LONGEST = Math.max(...Object.keys(MARKERS).map((m) => m.length));

/** The test check when PETREL_TEST_CHECK=1, else nothing. */
export function testChecks(env: NodeJS.ProcessEnv = process.env): MessageCheck[] {
  return env.PETREL_TEST_CHECK === "1" ? [testCheck()] : [];
}

export function testCheck(): MessageCheck {
  return {
    name: "test",
    start() {
      let streamed = 0;
      let tail = "";
      let found: "junk" | "reject" | null = null;
      return {
        write(chunk) {
          streamed += chunk.length;
          if (found === "reject") return;
          // The marker may be split across chunks: keep the last few bytes.
          const text = tail + chunk.toString("latin1");
          for (const [marker, kind] of Object.entries(MARKERS)) if (text.includes(marker) && found !== "reject") found = kind;
          tail = text.slice(-LONGEST);
        },
        async finish(message) {
          let staged = 0;
          for await (const c of message.open() as AsyncIterable<Buffer>) staged += c.length;
          const verdict: CheckVerdict =
            found === "reject"
              ? { kind: "reject", reply: reply(550, "5.7.1", "Message refused by the test check"), reason: "test marker" }
              : found === "junk"
                ? { kind: "junk", reason: "test marker" }
                : { kind: "accept" };
          return { headers: [`X-Petrel-Test-Check: ${verdict.kind}; streamed=${streamed}; staged=${staged}; size=${message.size}\r\n`], verdict };
        },
        abort() {},
      };
    },
  };
}
