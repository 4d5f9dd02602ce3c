// The [dkim] config block: its defaults, and the one-line errors for values that cannot work (no From
// in the signed list, a field name with a colon or a space, an empty key_dir).
import { test } from "node:test";
import assert from "node:assert/strict";
import { validateConfig } from "../config/load.js";
import { DKIM_OVERSIGNED_HEADERS, DKIM_SIGNED_HEADERS } from "../config/schema.js";

test("[dkim] defaults: signing on, keys in data_dir/dkim, the default field lists with From oversigned", () => {
  const c = validateConfig({}, null);
  assert.deepEqual(c.dkim, { sign: true, key_dir: "dkim", headers: [...DKIM_SIGNED_HEADERS], oversign: [...DKIM_OVERSIGNED_HEADERS] });
  assert.ok(c.dkim.oversign.includes("From"));
  assert.ok(!c.dkim.oversign.some((h) => /^list-/i.test(h)), "List-* are not oversigned: mailing lists add them");
});

test("[dkim] refuses a field list without From, bad field names and an empty key_dir, naming the key", () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ headers: ["Subject", "To"] }, /dkim\.headers.*must include From/],
    [{ headers: ["From", "Bad Name"] }, /dkim\.headers.*header field name/],
    [{ oversign: ["X:Y"] }, /dkim\.oversign.*header field name/],
    [{ key_dir: "" }, /dkim\.key_dir/],
    [{ sign: "yes" }, /dkim\.sign/],
    [{ selector: "x" }, /dkim.*selector/],
  ];
  for (const [dkim, message] of bad) assert.throws(() => validateConfig({ dkim }, "petrel.toml"), message, JSON.stringify(dkim));
});
