// Unit tests of sendmail's option parsing: getopt-style clusters and values, -t/-i/-oi/-f/-F/-bm,
// ignored options with warnings, and the usage errors that become EX_USAGE (64).
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseSendmailArgs, type SendmailOptions } from "./sendmail-options.js";

function ok(args: string[]): SendmailOptions {
  const r = parseSendmailArgs(args);
  assert.equal(r.kind, "ok", JSON.stringify(r));
  return (r as { options: SendmailOptions }).options;
}
function usage(args: string[]): string {
  const r = parseSendmailArgs(args);
  assert.equal(r.kind, "usage");
  return (r as { message: string }).message;
}

test("defaults: no -t, dots end the message, default sender, arguments are recipients", () => {
  const o = ok(["a@x.test", "b@y.test"]);
  assert.deepEqual(o, { extractRecipients: false, sender: null, fullName: null, ignoreDots: false, config: null, recipients: ["a@x.test", "b@y.test"], warnings: [] });
});

test("-f and -F take their value joined or as the next argument; -r is -f", () => {
  assert.equal(ok(["-fme@x.test", "a@x.test"]).sender, "me@x.test");
  assert.equal(ok(["-f", "me@x.test", "a@x.test"]).sender, "me@x.test");
  assert.equal(ok(["-r", "me@x.test"]).sender, "me@x.test");
  assert.equal(ok(["-f", "", "a@x.test"]).sender, "");
  assert.equal(ok(["-F", "Jo Public", "a@x.test"]).fullName, "Jo Public");
  assert.equal(ok(["-FJo", "a@x.test"]).fullName, "Jo");
});

test("-i, -oi and clusters like -ti set their flags; -bm is the default mode", () => {
  assert.equal(ok(["-i", "a@x.test"]).ignoreDots, true);
  assert.equal(ok(["-oi", "a@x.test"]).ignoreDots, true);
  const o = ok(["-ti", "-bm"]);
  assert.equal(o.extractRecipients, true);
  assert.equal(o.ignoreDots, true);
  assert.deepEqual(o.recipients, []);
});

test("options and recipients mix; -- ends options", () => {
  const o = ok(["a@x.test", "-t", "--", "-b@x.test"]);
  assert.equal(o.extractRecipients, true);
  assert.deepEqual(o.recipients, ["a@x.test", "-b@x.test"]);
});

test("harmless options are ignored: -v silently, -oem/-odi/-N with a warning", () => {
  const o = ok(["-v", "-oem", "-odi", "-N", "never", "a@x.test"]);
  assert.deepEqual(o.warnings, ["ignoring option -oem", "ignoring option -odi", "ignoring option -N never (DSN and body type are not supported yet)"]);
  assert.deepEqual(o.recipients, ["a@x.test"]);
});

test("--config names the config file", () => {
  assert.equal(ok(["--config", "/etc/p.toml", "a@x.test"]).config, "/etc/p.toml");
  assert.equal(ok(["--config=/etc/p.toml"]).config, "/etc/p.toml");
});

test("--help asks for the usage text", () => {
  assert.deepEqual(parseSendmailArgs(["--help"]), { kind: "help" });
});

test("unknown options, other modes and missing values are usage errors", () => {
  assert.equal(usage(["-z"]), "unknown option -z");
  assert.equal(usage(["--verbose"]), "unknown option --verbose");
  assert.match(usage(["-bp"]), /^unsupported mode -bp/);
  assert.equal(usage(["-f"]), "option -f needs a value");
  assert.equal(usage(["-oX"]), "unsupported option -oX");
  assert.match(usage(["-C", "/etc/mail/sendmail.cf"]), /^-C is not supported/);
});
