// Small deterministic spam and ham messages for the Bayes classifier's tests (unit and CLI): each drawn
// from its class's vocabulary plus words both share, in the encodings a real mailbox holds (plain,
// quoted-printable, base64, HTML). Obvious on purpose: the tests check plumbing, not accuracy (that is
// scripts/bench-spam.mjs). Never imported by src/ code outside tests.
import { prng } from "./prng.js";

export const GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

const SPAM_WORDS = ["viagra", "winner", "free", "money", "click", "offer", "cheap", "pills", "casino", "prize", "urgent", "credit", "loan", "discount", "guaranteed", "million", "bonus", "limited", "unsubscribe", "rolex"];
const HAM_WORDS = ["meeting", "patch", "review", "schedule", "agenda", "kernel", "release", "notes", "thanks", "branch", "commit", "tomorrow", "lunch", "project", "draft", "budget", "minutes", "build", "ticket", "deploy"];
const COMMON_WORDS = ["the", "and", "you", "this", "that", "with", "have", "from", "will", "your", "about", "please", "today", "here", "more"];

function pick(random: () => number, words: readonly string[], n: number): string[] {
  return Array.from({ length: n }, () => words[Math.floor(random() * words.length)]!);
}

/** The i-th spam fixture (CRLF line ends): plain, quoted-printable, base64 or HTML, some carrying GTUBE. */
export function spamMessage(i: number): string {
  const random = prng(1000 + i);
  const body = [...pick(random, SPAM_WORDS, 25), ...pick(random, COMMON_WORDS, 10)].sort(() => random() - 0.5).join(" ");
  const head = `From: "Best Deals" <promo${i}@deals.example>\r\nTo: alice@example.test\r\nSubject: ${pick(random, SPAM_WORDS, 3).join(" ").toUpperCase()}!!!\r\nMessage-ID: <${i}.spam@deals.example>\r\nMIME-Version: 1.0\r\n`;
  switch (i % 4) {
    case 0:
      return `${head}Content-Type: text/plain; charset=us-ascii\r\n\r\n${body}\r\n${GTUBE}\r\n`;
    case 1:
      return `${head}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${body.replace(/ /g, "=20")}\r\n`;
    case 2:
      return `${head}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(body).toString("base64").replace(/.{76}/g, "$&\r\n")}\r\n`;
    default:
      return `${head}Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>${body}</p><a href="http://pills.deals.example/buy">click</a></body></html>\r\n`;
  }
}

/** The i-th ham fixture: a colleague's plain or quoted-printable mail. */
export function hamMessage(i: number): string {
  const random = prng(2000 + i);
  const body = [...pick(random, HAM_WORDS, 25), ...pick(random, COMMON_WORDS, 10)].sort(() => random() - 0.5).join(" ");
  const head = `From: Bob Builder <bob@example.org>\r\nTo: alice@example.test\r\nSubject: Re: ${pick(random, HAM_WORDS, 2).join(" ")}\r\nMessage-ID: <${i}.ham@example.org>\r\nMIME-Version: 1.0\r\nUser-Agent: Mutt/2.2\r\n`;
  if (i % 2 === 0) return `${head}Content-Type: text/plain; charset=us-ascii\r\n\r\n${body}\r\n`;
  return `${head}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${body.replace(/ /g, "=20")}\r\n`;
}
