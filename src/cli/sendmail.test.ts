// Unit tests of the From field sendmail adds: the -F name as an atom phrase, a quoted string when it
// holds specials, RFC 2047 encoded when not ASCII, and control characters dropped.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fromField } from "./sendmail.js";

test("From with and without a full name", () => {
  assert.equal(fromField(null, "jo@x.test"), "jo@x.test");
  assert.equal(fromField("  ", "jo@x.test"), "jo@x.test");
  assert.equal(fromField("Cron Daemon", "root@x.test"), "Cron Daemon <root@x.test>");
  assert.equal(fromField('Jo "Q." Public, Jr', "jo@x.test"), '"Jo \\"Q.\\" Public, Jr" <jo@x.test>');
  assert.equal(fromField("Zoë", "z@x.test"), `=?UTF-8?B?${Buffer.from("Zoë").toString("base64")}?= <z@x.test>`);
  assert.equal(fromField("Evil\r\nBcc: x@y.test", "e@x.test"), '"EvilBcc: x@y.test" <e@x.test>');
});
