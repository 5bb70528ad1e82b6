#!/usr/bin/env bash
# Runs the Dockerfile's steps without a Docker engine: each stage in its own
# throwaway Debian bookworm root made with debootstrap (--variant=minbase,
# what debian:bookworm and debian:bookworm-slim are made of), entered with
# chroot. Then it starts the built binary in the final root as the image's
# user: --version, check --config (the image's config), and the HEALTHCHECK
# command against a daemon it starts there.
#
#   scripts/check-dockerfile.sh            exit 0: the image builds and runs
#                                          exit 77: this machine cannot do it (says why)
#
# It understands the instructions this project's Dockerfile uses: FROM [AS],
# ARG, ENV, WORKDIR, COPY [--from], RUN [--mount=type=cache,target=],
# USER, EXPOSE, HEALTHCHECK, ENTRYPOINT, CMD; anything else is an error.
# Caches (base roots, .deb files, RUN cache mounts) live in
# $SIDECACHE_DOCKER_CACHE (default /var/cache/sidecache-dockerfile).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${SIDECACHE_DOCKER_CACHE:-/var/cache/sidecache-dockerfile}

skip() { echo "check-dockerfile: SKIPPED: $*"; exit 77; }

# The Debian archive this machine's apt is configured with, for one suite:
# the first URI of an enabled source (deb822 *.sources or one-line *.list)
# that serves it. No mirror's name is written here: the machine's own
# configuration (or SIDECACHE_DEBIAN_MIRROR / SIDECACHE_DEBIAN_SECURITY)
# says where packages come from.
apt_uri() {
  local suite=$1 f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk -v suite="$suite" '
      function flush() { if (enabled && types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uri != "") { print uri; found = 1; exit } }
      /^[[:space:]]*$/ { flush(); types = ""; suites = ""; uri = ""; enabled = 1; next }
      /^[[:space:]]*#/ { next }
      /^Types:/ { sub(/^Types:[[:space:]]*/, ""); types = $0 }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0 }
      /^Enabled:[[:space:]]*no/ { enabled = 0 }
      BEGIN { enabled = 1 }
      END { if (!found) flush() }' "$f" | head -n 1 | grep . && return 0
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    awk -v suite="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == suite) { print $i; exit } }' "$f" |
      head -n 1 | grep . && return 0
  done
  return 1
}
MIRROR=${SIDECACHE_DEBIAN_MIRROR:-$(apt_uri bookworm || true)}
SECURITY=${SIDECACHE_DEBIAN_SECURITY:-$(apt_uri bookworm-security || true)}
[[ -n "$MIRROR" ]] || skip "this machine's apt sources name no Debian bookworm archive; set SIDECACHE_DEBIAN_MIRROR"
[[ $(id -u) -eq 0 ]] || skip "needs root (debootstrap, chroot and mount)"
command -v debootstrap >/dev/null || skip "debootstrap is not installed (scripts/deps.sh installs it)"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sidecache-dockerfile-XXXXXX")
MOUNTS=()
cleanup() {
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[$i]}" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/probe"
mount -t tmpfs none "$WORK/probe" 2>/dev/null || skip "cannot mount (no CAP_SYS_ADMIN in this container)"
umount "$WORK/probe"
mkdir -p "$CACHE/debs" "$CACHE/mounts"

# A bookworm minbase root, cached as a tarball for a week.
base_root() {  # dest
  local tar="$CACHE/bookworm-minbase.tar"
  if [[ ! -f "$tar" || -n "$(find "$tar" -mtime +7 2>/dev/null)" ]]; then
    echo "check-dockerfile: debootstrap bookworm (minbase) from $MIRROR" >&2
    local tmp="$WORK/debootstrap"
    rm -rf "$tmp"
    debootstrap --variant=minbase --cache-dir="$CACHE/debs" bookworm "$tmp" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
      { tail -20 "$WORK/debootstrap.log"; skip "debootstrap failed (no route to $MIRROR?)"; }
    tar -C "$tmp" -cf "$tar.new" . && mv "$tar.new" "$tar"
    rm -rf "$tmp"
  fi
  mkdir -p "$1"
  tar -C "$1" -xf "$tar"
}

enter() {  # root: mounts what a build needs
  local r=$1
  for d in dev dev/pts proc sys; do mkdir -p "$r/$d"; done
  mount --bind /dev "$r/dev" && MOUNTS+=("$r/dev")
  mount -t proc proc "$r/proc" && MOUNTS+=("$r/proc")
  mkdir -p "$r/var/cache/apt/archives"
  mount --bind "$CACHE/debs" "$r/var/cache/apt/archives" && MOUNTS+=("$r/var/cache/apt/archives")
  cp /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
  # The apt sources of the image: bookworm, bookworm-updates, security.
  cat >"$r/etc/apt/sources.list" <<SRC
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
${SECURITY:+deb $SECURITY bookworm-security main}
SRC
}

declare -A STAGE_ROOT
declare -a ENVS
stage=0 root="" workdir=/ user=root name="" healthcheck="" entrypoint="" cmd=""

run_in() {  # command string, with ENV and WORKDIR applied
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    "${ENVS[@]}" /bin/sh -c "mkdir -p '$workdir' && cd '$workdir' && $1"
}

instruction() {  # one logical line
  local line=$1 op rest
  op=${line%% *}
  rest=${line#* }
  case "${op^^}" in
    FROM)
      stage=$((stage + 1))
      name=$(awk '{ if (toupper($2) == "AS") print $3 }' <<<"$rest")
      local image=${rest%% *}
      [[ "$image" == debian:bookworm || "$image" == debian:bookworm-slim ]] ||
        { echo "check-dockerfile: unsupported base image $image" >&2; exit 1; }
      root="$WORK/stage$stage"
      base_root "$root"
      enter "$root"
      STAGE_ROOT[$stage]=$root
      [[ -n "$name" ]] && STAGE_ROOT[$name]=$root
      ENVS=() workdir=/ user=root healthcheck="" entrypoint="" cmd=""
      echo "check-dockerfile: stage $stage ($image${name:+ as $name})" >&2
      ;;
    ARG | ENV)
      ENVS+=("${rest%% *}")
      ;;
    WORKDIR) workdir=$rest ;;
    COPY)
      local from="" args
      read -r -a args <<<"$rest"
      if [[ "${args[0]}" == --from=* ]]; then from=${args[0]#--from=}; args=("${args[@]:1}"); fi
      local dest=${args[-1]} srcs=("${args[@]:0:${#args[@]}-1}")
      [[ "$dest" == /* ]] || dest="$workdir/$dest"
      for s in "${srcs[@]}"; do
        local src
        if [[ -n "$from" ]]; then src="${STAGE_ROOT[$from]}$s"; else src="$ROOT/$s"; fi
        [[ -e "$src" ]] || { echo "check-dockerfile: COPY: $s does not exist" >&2; exit 1; }
        if [[ -d "$src" ]]; then
          mkdir -p "$root$dest" && cp -a "$src/." "$root$dest/"
          # .dockerignore: what the build context would not hold.
          if [[ -z "$from" && -f "$ROOT/.dockerignore" ]]; then
            while IFS= read -r ign; do
              [[ -z "$ign" || "$ign" == \#* ]] && continue
              if [[ "$ign" == "$s"/* ]]; then rm -rf "$root$dest/${ign#"$s"/}"; fi
            done <"$ROOT/.dockerignore"
          fi
        elif [[ "$dest" == */ ]]; then mkdir -p "$root$dest" && cp -a "$src" "$root$dest"
        else mkdir -p "$(dirname "$root$dest")" && cp -a "$src" "$root$dest"; fi
      done
      ;;
    RUN)
      local cmdline=$rest
      while [[ "$cmdline" == --mount=* ]]; do
        local spec=${cmdline%% *}
        cmdline=${cmdline#* }
        local target
        target=$(tr ',' '\n' <<<"${spec#--mount=}" | awk -F= '$1=="target" {print $2}')
        [[ "$spec" == *type=cache* && -n "$target" ]] || { echo "check-dockerfile: unsupported $spec" >&2; exit 1; }
        local host="$CACHE/mounts/$(tr '/' '_' <<<"$target")"
        mkdir -p "$host" "$root$target"
        mount --bind "$host" "$root$target" && MOUNTS+=("$root$target")
      done
      echo "check-dockerfile:   RUN ${cmdline:0:100}" >&2
      run_in "$cmdline" >"$WORK/run.log" 2>&1 || { tail -40 "$WORK/run.log"; echo "check-dockerfile: RUN failed" >&2; exit 1; }
      ;;
    USER) user=$rest ;;
    EXPOSE) ;;
    HEALTHCHECK) healthcheck=$rest ;;
    ENTRYPOINT) entrypoint=$rest ;;
    CMD) cmd=$rest ;;
    *) echo "check-dockerfile: unsupported instruction $op" >&2; exit 1 ;;
  esac
}

# Join continuation lines, drop comments and blank lines.
logical=""
while IFS= read -r l || [[ -n "$l" ]]; do
  [[ "$l" =~ ^[[:space:]]*# ]] && continue
  if [[ "$l" == *\\ ]]; then logical+="${l%\\} "; continue; fi
  logical+="$l"
  logical=$(sed -E 's/^[[:space:]]+//; s/[[:space:]]+/ /g' <<<"$logical")
  [[ -n "$logical" ]] && instruction "$logical"
  logical=""
done <"$ROOT/Dockerfile"

# The final stage is the image. Run its binary as its user.
json_args() { python3 -c 'import json,sys; print("\n".join(json.loads(sys.argv[1])))' "$1" 2>/dev/null ||
  sed -E 's/^\[|\]$//g; s/", *"/\n/g; s/"//g' <<<"$1"; }
mapfile -t EP < <(json_args "$entrypoint")
mapfile -t CMDV < <(json_args "$cmd")
[[ "$user" != root && "$user" != 0 ]] || { echo "check-dockerfile: the image runs as root" >&2; exit 1; }
[[ -n "$healthcheck" ]] || { echo "check-dockerfile: no HEALTHCHECK" >&2; exit 1; }
as_user() { chroot --userspec="$user:$user" "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin "${ENVS[@]}" "$@"; }
echo "check-dockerfile: image: $(as_user "${EP[@]}" --version)"
as_user "${EP[@]}" check "${CMDV[@]}" ||
  { echo "check-dockerfile: 'check' failed in the image" >&2; exit 1; }
# Every shared library resolves in the runtime root (nothing came from the build stage by accident).
if chroot "$root" /usr/bin/ldd "${EP[0]}" | grep -q "not found"; then
  chroot "$root" /usr/bin/ldd "${EP[0]}" | grep "not found"
  exit 1
fi
# The HEALTHCHECK command: fails with no daemon, passes with one running
# (PostgreSQL and Redis need not be there for /healthz).
mapfile -t HC < <(json_args "${healthcheck#*CMD }")
if as_user SIDECACHE_LISTEN=127.0.0.1:1 "${HC[@]}" >/dev/null 2>&1; then echo "check-dockerfile: HEALTHCHECK passed with no daemon running" >&2; exit 1; fi
# On a free loopback port: the chroot shares this machine's network.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 17070)
LISTEN="SIDECACHE_LISTEN=127.0.0.1:$PORT"
# (chroot and env exec the daemon: $! is its pid, not a subshell's.)
chroot --userspec="$user:$user" "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin "${ENVS[@]}" "$LISTEN" \
  "${EP[@]}" "${CMDV[@]}" >"$WORK/daemon.log" 2>&1 &
daemon=$!
ok=0
for _ in $(seq 1 50); do
  if as_user "$LISTEN" "${HC[@]}" >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.1
done
kill "$daemon" 2>/dev/null || true
wait "$daemon" 2>/dev/null || true
[[ $ok -eq 1 ]] || { cat "$WORK/daemon.log"; echo "check-dockerfile: HEALTHCHECK did not pass against the running daemon" >&2; exit 1; }
echo "check-dockerfile: ok: built in a bookworm root, runs as user $user on bookworm-slim libraries; --version, check and HEALTHCHECK pass"
