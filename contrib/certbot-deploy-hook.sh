#!/bin/sh
# certbot --deploy-hook for Petrel: after certbot obtains or renews the certificate, copies
# fullchain.pem and privkey.pem from $RENEWED_LINEAGE (set by certbot) to /etc/petrel/tls, readable by
# the petrel group only (the live/ copies are root's), and has petrel reload them (SIGHUP; new TLS
# handshakes get the new certificate, open connections stay). Each file is replaced by a rename, so
# petrel never reads half a file. PETREL_TLS_DIR and PETREL_RELOAD override the two places (tests).
set -eu
dest=${PETREL_TLS_DIR:-/etc/petrel/tls}
# try-reload-or-restart: does nothing while petrel is stopped (the first certbot run comes before it).
reload=${PETREL_RELOAD:-systemctl try-reload-or-restart petrel}
: "${RENEWED_LINEAGE:?run by certbot --deploy-hook, which sets RENEWED_LINEAGE}"

install -d -o root -g petrel -m 0750 "$dest"
for f in fullchain.pem privkey.pem; do
  install -o root -g petrel -m 0640 "$RENEWED_LINEAGE/$f" "$dest/.$f.new"
done
# The key first: between the two renames a reload cannot come, only the one below.
mv -f "$dest/.privkey.pem.new" "$dest/privkey.pem"
mv -f "$dest/.fullchain.pem.new" "$dest/fullchain.pem"
$reload
echo "petrel: installed the certificate from $RENEWED_LINEAGE into $dest and reloaded"
