// The numeric `--name value` options of the bench scripts (no parser library for four numbers).

const args = process.argv.slice(2);

/** The number after `--name` on the command line, else `def`. */
export function opt(name, def) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
}
