// Header field text Petrel writes from outside data (trace headers, bounces, Authentication-Results):
// controls and line breaks can never end a field or start another, and a field is folded (RFC 5322
// §2.2.3) to keep lines near WIDTH, never past 998 octets.

/** A word longer than this is split so no line passes RFC 5322's 998-octet limit. */
export const MAX_WORD = 900;
export const WIDTH = 78;

/** Text that goes into a header: C0/C1 controls, DEL and Unicode line separators become "?". */
export function headerText(s: string): string {
  return s.replace(/[\x00-\x1f\x7f\u0080-\u009f\u2028\u2029]/g, "?");
}

/** Text from outside made safe for one header field: line breaks become spaces, other controls "?". */
export function fieldText(s: string): string {
  return headerText(s.replace(/\r\n|[\r\n]/g, " "));
}

/**
 * "Name: value" CRLF, folded (RFC 5322 §2.2.3) before spaces to keep lines near WIDTH; a word longer
 * than MAX_WORD gets a space inserted so no line passes 998 octets. Unfolding gives the value back.
 */
export function field(name: string, value: string): string {
  const words = splitLongWords(fieldText(value)).split(/(?= )/);
  const lines: string[] = [];
  let line = `${name}:`;
  for (const [k, w] of words.entries()) {
    const word = k === 0 && !w.startsWith(" ") ? ` ${w}` : w;
    if (line.length + word.length > WIDTH && line.trim() !== `${name}:` && word.trim() !== "") {
      lines.push(line);
      line = word;
    } else line += word;
  }
  lines.push(line);
  return lines.join("\r\n") + "\r\n";
}

export function splitLongWords(text: string): string {
  return text.replace(new RegExp(`[^ ]{${MAX_WORD + 1},}`, "g"), (w) => w.match(new RegExp(`.{1,${MAX_WORD}}`, "gs"))!.join(" "));
}
