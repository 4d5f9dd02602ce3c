// The training hook for IMAP (a later issue): a user's moves in and out of the Junk folder are the best
// labels a filter gets. The IMAP server calls learnFromMove after a MOVE or COPY+EXPUNGE has succeeded,
// outside the command's reply path (training failures are logged by the caller, never shown to the client).
//   into Junk (from anywhere but Junk)          → learn as spam (a message trained as ham is moved over)
//   out of Junk into any folder but Trash        → learn as ham: the spam training is taken back first if
//                                                  it was trained as spam; a message the filter put in Junk
//                                                  on its own was never trained, and is simply learned as ham
//   out of Junk into Trash, or any other move    → nothing (deleting spam says nothing new)
// Folder names are IMAP names ("Junk", "INBOX.Junk") or Maildir++ folders (".Junk"), case-insensitive.
// Trusts `message` to be the stored file's bytes: the same bytes give the same digest and tokens.
import { prepareMessage, trainPrepared } from "./bayes-filter.js";
import { bayesDatabasePath, TokenStore, type LearnOutcome } from "./token-store.js";

export type MoveLearning = { readonly kind: "none" } | { readonly kind: "trained"; readonly as: "spam" | "ham"; readonly outcome: LearnOutcome };

export interface BayesLearnerOptions {
  readonly dataDir: string;
  readonly scope: "global" | "per-user";
}

/** "Junk", ".Junk", "INBOX.Junk", "INBOX/Junk" → "junk". */
function leaf(folder: string): string {
  return folder.replace(/^.*[./]/, "").toLowerCase();
}
const isJunk = (folder: string): boolean => leaf(folder) === "junk";
const isTrash = (folder: string): boolean => ["trash", "deleted messages", "deleted items"].includes(leaf(folder));

/** What a move teaches, without touching a database. */
export function learningFor(from: string, to: string): "spam" | "ham" | null {
  if (isJunk(to) && !isJunk(from)) return "spam";
  if (isJunk(from) && !isJunk(to) && !isTrash(to)) return "ham";
  return null;
}

export class BayesLearner {
  constructor(private readonly options: BayesLearnerOptions) {}

  /**
   * Learns from one message `user` (canonical address) moved from folder `from` to folder `to`.
   * Opens the user's (or the global) database for the one write; moves are rare next to deliveries.
   */
  async learnFromMove(user: string, message: Buffer, from: string, to: string): Promise<MoveLearning> {
    const as = learningFor(from, to);
    if (as === null) return { kind: "none" };
    const prepared = await prepareMessage(message);
    const store = TokenStore.openForTraining(bayesDatabasePath(this.options.dataDir, this.options.scope === "per-user" ? user : null));
    try {
      return { kind: "trained", as, outcome: trainPrepared(store, prepared, as) };
    } finally {
      store.close();
    }
  }
}
