// Puts a message in the queue through the real spool, for unit tests of the queue and the relay:
// one off-site recipient per address given (or a recipient as given, DSN requests and all), a small
// fixed body.
import { silentLogger } from "../core/log.js";
import { Spool, type AcceptedRecipient } from "../spool/spool.js";

export async function queueTestMessage(
  dataDir: string,
  id: string,
  remote: readonly (string | AcceptedRecipient)[],
  receivedAt: Date,
  sender = "alice@localhost",
): Promise<void> {
  const msg = await new Spool(dataDir, silentLogger()).open({
    id,
    sender,
    recipients: remote.map((r) => (typeof r === "string" ? { address: r, route: { local: [], remote: [r] } } : r)),
    helo: "client.test",
    peerAddress: "127.0.0.1",
    hostname: "mx.test",
    protocol: "ESMTPSA",
    receivedAt,
  });
  await msg.write([Buffer.from("Subject: queued\r\n\r\nbody\r\n")]);
  await msg.commit();
}
