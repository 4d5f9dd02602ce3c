// The body of the password-hash worker thread (auth/hash-pool.ts): verifies scrypt hashes one at a
// time on its own thread, so a storm of login attempts never occupies libuv's pool, where fsync runs.
// Trusts its parent; a null hash is checked against a dummy so unknown users cost the same time.
import { parentPort } from "node:worker_threads";
import { hashPassword, verifyPassword } from "../store/password.js";

export interface VerifyRequest {
  readonly id: number;
  readonly password: string;
  readonly hash: string | null;
}

export interface VerifyResponse {
  readonly id: number;
  readonly match: boolean;
}

let dummy: string | undefined;

parentPort?.on("message", (req: VerifyRequest) => {
  let match = false;
  try {
    if (req.hash === null) verifyPassword(req.password, (dummy ??= hashPassword("petrel-dummy-password")));
    else match = verifyPassword(req.password, req.hash);
  } catch {
    match = false; // a malformed stored hash matches nothing
  }
  parentPort!.postMessage({ id: req.id, match } satisfies VerifyResponse);
});
