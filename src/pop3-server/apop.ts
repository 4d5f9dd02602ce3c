// Temporary re-export: APOP moved to auth/apop.ts (shared login code). main.ts, which this branch may
// not edit, still imports it from here; delete this file once main.ts imports "./auth/apop.js".
export { ApopTimestamps } from "../auth/apop.js";
