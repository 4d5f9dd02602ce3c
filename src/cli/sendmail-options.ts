// Command-line options of `petrel sendmail`, read like /usr/sbin/sendmail (Postfix's and Sendmail's)
// reads them: getopt style, so "-ti", "-oi", "-fsender", "-f sender" and "-F 'Full Name'" all work,
// options and recipients may mix, "--" ends options. Unsupported options that are harmless to ignore
// give a warning; others are a usage error (EX_USAGE). Trusts nothing; checks no address (sendmail.ts does).

export interface SendmailOptions {
  /** -t: recipients from To, Cc and Bcc (added to the ones given as arguments, as Postfix does). */
  readonly extractRecipients: boolean;
  /** -f / -r: the envelope sender as given; null for the default (user@hostname). */
  readonly sender: string | null;
  /** -F: the full name for a From field we add. */
  readonly fullName: string | null;
  /** -i / -oi: a line with a single "." is content, not the end. */
  readonly ignoreDots: boolean;
  /** --config FILE (a Petrel addition; else $PETREL_CONFIG, /etc/petrel/petrel.toml). */
  readonly config: string | null;
  readonly recipients: readonly string[];
  /** One line each, printed as "sendmail: warning: ...". */
  readonly warnings: readonly string[];
}

export type SendmailArgs =
  | { readonly kind: "ok"; readonly options: SendmailOptions }
  | { readonly kind: "help" }
  | { readonly kind: "usage"; readonly message: string };

export const SENDMAIL_HELP = `Usage: petrel sendmail [options] [recipient...] < message
Queues the message on stdin into data_dir/maildrop for the server (which need not be running).
  -t             also send to the addresses in To, Cc and Bcc (Bcc is removed)
  -f ADDRESS     envelope sender (default: you@hostname; "<>" for none); -r is the same
  -F "NAME"      full name for the From field added when the message has none
  -i, -oi        a line with only "." is content (without: it ends the message)
  --config FILE  config file (default: $PETREL_CONFIG, /etc/petrel/petrel.toml)
  -bm, -v, -o*   accepted for compatibility (-o options are ignored with a warning)
Exit status (sysexits.h): 0 queued, 64 usage, 65 bad address or message, 73 cannot create,
74 write error, 75 try again, 77 not allowed (not root or data_dir's owner), 78 config.
`;

/** Options that take a value (the rest of the argument, else the next one), as in Postfix's getopt string. */
const WITH_VALUE = new Set(["B", "C", "F", "L", "N", "O", "R", "V", "X", "b", "e", "f", "h", "o", "p", "q", "r"]);
/** Options that are ignored without a word: they change nothing a user would notice. */
const SILENT = new Set(["v", "m", "U", "G", "I"]);
/** -o sub-options that are harmless to ignore (error and delivery modes, log level, old -om). */
const HARMLESS_O = /^(e[a-z]?|d[a-z]?|m|L.*|A.*|Q.*|M.*)$/;

export function parseSendmailArgs(args: readonly string[]): SendmailArgs {
  let extractRecipients = false;
  let sender: string | null = null;
  let fullName: string | null = null;
  let ignoreDots = false;
  let config: string | null = null;
  const recipients: string[] = [];
  const warnings: string[] = [];
  const usage = (message: string): SendmailArgs => ({ kind: "usage", message });

  for (let k = 0; k < args.length; k++) {
    const arg = args[k]!;
    if (arg === "--") {
      recipients.push(...args.slice(k + 1));
      break;
    }
    if (arg === "--config" || arg.startsWith("--config=")) {
      const value = arg === "--config" ? args[++k] : arg.slice("--config=".length);
      if (value === undefined || value === "") return usage("option --config needs a file");
      config = value;
      continue;
    }
    if (arg === "--help") return { kind: "help" };
    if (arg.startsWith("--")) return usage(`unknown option ${arg}`);
    if (!arg.startsWith("-") || arg === "-") {
      recipients.push(arg);
      continue;
    }
    for (let i = 1; i < arg.length; i++) {
      const opt = arg[i]!;
      if (!WITH_VALUE.has(opt)) {
        if (opt === "t") extractRecipients = true;
        else if (opt === "i") ignoreDots = true;
        else if (opt === "n") warnings.push("ignoring -n (aliases always apply)");
        else if (!SILENT.has(opt)) return usage(`unknown option -${opt}`);
        continue;
      }
      let value: string | undefined = arg.slice(i + 1);
      if (value === "") value = args[++k];
      if (value === undefined) return usage(`option -${opt} needs a value`);
      i = arg.length; // the value took the rest of this argument
      switch (opt) {
        case "f":
        case "r":
          sender = value;
          break;
        case "F":
          fullName = value;
          break;
        case "b":
          if (value !== "m") return usage(`unsupported mode -b${value} (only -bm, the default; use "petrel queue list" for -bp)`);
          break;
        case "o":
          if (value === "i") ignoreDots = true;
          else if (HARMLESS_O.test(value)) warnings.push(`ignoring option -o${value}`);
          else return usage(`unsupported option -o${value}`);
          break;
        case "N":
        case "R":
        case "V":
        case "B":
          warnings.push(`ignoring option -${opt} ${value} (DSN and body type are not supported yet)`);
          break;
        case "C":
          return usage("-C is not supported: give the config with --config FILE or PETREL_CONFIG");
        default:
          return usage(`unsupported option -${opt}`);
      }
    }
  }
  return { kind: "ok", options: { extractRecipients, sender, fullName, ignoreDots, config, recipients, warnings } };
}
