// petrel spam train|classify: the built-in Bayes classifier from the command line (src/spam/bayes/).
//   train --spam|--ham PATH... [--user U]   files, mboxes, Maildirs (cur/ + new/) or folders of files;
//                                           prints what was learned and the database's totals
//   classify PATH... [--user U]             one line per message: "PATH: spam 0.9987" (ham/unsure/spam)
// Every path is checked before anything is trained (one-line error, exit 1). Training runs in batches,
// one SQLite transaction each, so the running server keeps classifying meanwhile. Trusts nothing typed.
import fs from "node:fs";
import type { Command } from "commander";
import { canonical, parseAddress } from "../core/address.js";
import { UsageError } from "../core/errors.js";
import { bayesSettings } from "../spam/bayes-check.js";
import { classifyMessage, prepareMessage, trainBatch, type BayesSettings, type PreparedMessage } from "../spam/bayes/bayes-filter.js";
import { checkPaths, readMessages } from "../spam/bayes/message-sources.js";
import { bayesDatabasePath, TokenStore, type LearnOutcome, type TrainClass } from "../spam/bayes/token-store.js";
import type { LoadedConfig } from "../config/load.js";
import { CONFIG_HELP, loadCliConfig, note, oneLineErrors, withStore, type ConfigOption } from "./context.js";

interface TrainOptions extends ConfigOption {
  readonly spam?: boolean;
  readonly ham?: boolean;
  readonly user?: string;
}
interface ClassifyOptions extends ConfigOption {
  readonly user?: string;
}

/** Messages tokenized ahead of one write transaction. */
const BATCH = 200;

export function registerSpam(program: Command): void {
  const spam = oneLineErrors(program.command("spam").description("train and test the built-in Bayes spam classifier"));
  spam
    .command("train <path...>")
    .description("learn messages as spam or ham: message files, mbox files, Maildirs (cur/ and new/) or folders of message files")
    .option("--spam", "the messages are spam")
    .option("--ham", "the messages are ham (wanted mail)")
    .option("--user <address>", "train this user's database (for [spam] bayes_scope = \"per-user\")")
    .option("--config <file>", CONFIG_HELP)
    .action(async (paths: string[], opts: TrainOptions) => {
      if (opts.spam === opts.ham) throw new UsageError("say what the messages are: --spam or --ham (one of them)");
      const cls: TrainClass = opts.spam ? "spam" : "ham";
      const { file } = await databaseFor(opts);
      await checkPaths(paths);
      const store = TokenStore.openForTraining(file);
      try {
        const counts = await train(store, paths, cls);
        const t = store.totals();
        process.stdout.write(`${cls}: ${counts.learned} learned, ${counts.already} already trained, ${counts.relearned} moved from ${cls === "spam" ? "ham" : "spam"}; database now ${t.spam} spam, ${t.ham} ham (${file})\n`);
      } finally {
        store.close();
      }
    });
  spam
    .command("classify <path...>")
    .description('score messages: one line per message, "PATH: ham|unsure|spam SCORE"')
    .option("--user <address>", "use this user's database")
    .option("--config <file>", CONFIG_HELP)
    .action(async (paths: string[], opts: ClassifyOptions) => {
      const { file, settings } = await databaseFor(opts);
      await checkPaths(paths);
      // `petrel spam classify ... | head` closes the pipe early: stop quietly.
      process.stdout.on("error", (err: NodeJS.ErrnoException) => {
        if (err.code === "EPIPE") process.exit(0);
        throw err;
      });
      const store = TokenStore.openForReading(file);
      if (store === null) throw new UsageError(`no Bayes database at ${file} yet: train it first (petrel spam train --spam|--ham PATH...)`);
      try {
        const t = store.totals();
        if (t.spam === 0 || t.ham === 0) throw new UsageError(`the Bayes database has ${t.spam} spam and ${t.ham} ham messages: train both classes first`);
        if (t.spam < settings.minTrained || t.ham < settings.minTrained)
          note(`the database has ${t.spam} spam and ${t.ham} ham messages; the server gives verdicts from ${settings.minTrained} of each ([spam] bayes_min_trained)`);
        for await (const m of readMessages(paths)) {
          const r = await classifyMessage(store, m.content, { ...settings, minTrained: 1 });
          if (r.kind === "classified") process.stdout.write(`${m.label}: ${r.verdict} ${r.score.toFixed(4)}\n`);
        }
      } finally {
        store.close();
      }
    });
}

/** The database the options name, and the verdict settings of the config. */
async function databaseFor(opts: ConfigOption & { readonly user?: string }): Promise<{ file: string; settings: BayesSettings }> {
  let config: LoadedConfig;
  let user: string | null = null;
  if (opts.user !== undefined) {
    const a = parseAddress(opts.user);
    if (!a) throw new UsageError(`not an address: ${JSON.stringify(opts.user)}`);
    user = canonical(a);
    const address = user;
    config = await withStore(opts, (store, cfg) => {
      if (store.getUser(address) === null) throw new UsageError(`no such user: ${address}`);
      return cfg;
    });
    if (config.spam.bayes_scope !== "per-user") note(`[spam] bayes_scope is "global": the server does not read per-user databases`);
  } else {
    config = loadCliConfig(opts);
    if (config.origin === "defaults" && !fs.existsSync(config.data_dir))
      throw new UsageError(`data_dir ${config.data_dir} does not exist; pass --config FILE or set PETREL_CONFIG`);
    if (config.spam.bayes_scope === "per-user") note(`[spam] bayes_scope is "per-user": the server reads only per-user databases (--user)`);
  }
  return { file: bayesDatabasePath(config.data_dir, user), settings: bayesSettings(config.spam) };
}

async function train(store: TokenStore, paths: readonly string[], cls: TrainClass): Promise<Record<LearnOutcome, number>> {
  const counts: Record<LearnOutcome, number> = { learned: 0, already: 0, relearned: 0 };
  let batch: PreparedMessage[] = [];
  const flush = (): void => {
    const prepared = batch;
    batch = [];
    for (const outcome of trainBatch(store, prepared, cls)) counts[outcome]++;
  };
  for await (const m of readMessages(paths)) {
    batch.push(await prepareMessage(m.content));
    if (batch.length >= BATCH) flush();
  }
  if (batch.length > 0) flush();
  return counts;
}
