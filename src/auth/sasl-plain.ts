// The SASL PLAIN mechanism (RFC 4616) as POP3 AUTH carries it (RFC 5034 §4): one base64 message
// "authzid NUL authcid NUL password". Trusts nothing: bad base64, missing NULs or empty fields fail.
// Only a user acting as themselves is allowed: an authzid, when given, must equal the authcid.

export interface PlainCredentials {
  readonly user: string;
  readonly password: string;
}

/** Decodes a PLAIN response (base64); null when it is malformed or asks to act as someone else. */
export function decodePlain(base64: string): PlainCredentials | null {
  if (base64.length === 0 || base64.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return null;
  const fields = Buffer.from(base64, "base64").toString("utf8").split("\0");
  if (fields.length !== 3) return null;
  const [authzid, user, password] = fields as [string, string, string];
  if (user === "" || password === "") return null;
  if (authzid !== "" && authzid.toLowerCase() !== user.toLowerCase()) return null;
  return { user, password };
}
