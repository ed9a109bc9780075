#!/usr/bin/env bash
# Build a real VST3 effect for testing scalgui's VST3 success path, on Debian bookworm.
#
#   scripts/build_test_vst3.sh [DEST]      (DEST defaults to ~/.cache/scalgui/test-vst3)
#
# Debian ships no VST3 binaries, so this builds one from Debian's own source package
# `dpf-plugins` (DISTRHO Plugin Framework 1.6 with its built-in VST3 wrapper; no Steinberg
# SDK): "Ping Pong Pan", a stereo-only auto-panner with two parameters (frequency, width).
# Its output is the same on every run, width=0 passes audio through bit for bit, and the
# defaults (0.5 Hz LFO, 75 % width) audibly change stereo input. Only the DSP and the
# VST3 target are built (no UI, no other formats or plugins): two C++ files and a link.
#
# Installs with apt-get (as root, or through sudo) only what is missing: g++, make,
# xz-utils; adds a deb-src entry mirroring the system's Debian entries when there is none.
# Fetches the upstream tarball with `apt-get source --tar-only` (hash-checked by apt) into
# a temporary folder and extracts only DPF and the one plugin.
#
# Prints the bundle's path (DEST/PingPongPan.vst3) as the only line on stdout; progress
# goes to stderr. Does nothing but print the path when the bundle is already there.
# On failure: exit status 1 and one line on stderr saying what failed (with the log's path).
set -euo pipefail

PLUGIN=PingPongPan
SRCPKG=dpf-plugins
ME=$(basename "$0")
DEST=${1:-${HOME:-/root}/.cache/scalgui/test-vst3}
BUNDLE="$DEST/$PLUGIN.vst3"
WORK=""
LOG=/dev/null

die() {
    if [ "$LOG" != /dev/null ] && [ -s "$LOG" ]; then
        echo "$ME: error: $* (log: $LOG)" >&2
        WORK=""   # keep the work folder and its log for inspection
    else
        echo "$ME: error: $*" >&2
    fi
    exit 1
}
say() { echo "$ME: $*" >&2; }
cleanup() { if [ -n "$WORK" ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT

has_bundle() { compgen -G "$BUNDLE/Contents/*-linux/$PLUGIN.so" >/dev/null; }

if has_bundle; then
    echo "$BUNDLE"
    exit 0
fi

mkdir -p "$DEST" 2>/dev/null && [ -w "$DEST" ] || die "cannot create or write to $DEST"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script needs Debian (bookworm)"
export DEBIAN_FRONTEND=noninteractive

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi
as_root() {
    if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
        die "need root or sudo to run: $*"
    fi
    $SUDO "$@"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/scalgui-vst3.XXXXXX") || die "cannot create a temporary folder"
chmod 755 "$WORK"   # let apt's unprivileged _apt user write its download there
LOG="$WORK/build.log"
: > "$LOG"

# --- build tools --------------------------------------------------------------------------
missing=()
for pkg in g++ make xz-utils; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    as_root apt-get update -qq >>"$LOG" 2>&1 || say "apt-get update reported errors (going on)"
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1 \
        || die "apt-get install ${missing[*]} failed"
fi

# --- source -------------------------------------------------------------------------------
has_source() { apt-cache showsrc "$SRCPKG" 2>/dev/null | grep -q '^Package:'; }
if ! has_source; then
    say "adding deb-src entries for Debian's archive"
    list=/etc/apt/sources.list.d/scalgui-deb-src.list
    sources=/etc/apt/sources.list.d/scalgui-deb-src.sources
    # One-line format: every "deb" line that points at a Debian archive, as "deb-src".
    lines=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | grep -E '^[[:space:]]*deb[[:space:]]' | grep -i 'debian' \
        | sed -E 's/^[[:space:]]*deb[[:space:]]/deb-src /' || true)
    # deb822 format: every stanza with Types: deb and a Debian URI, with Types: deb-src.
    stanzas=$(for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = ""; ORS = "\n\n" }
             {
                 n = split($0, l, "\n"); types = ""; uri = 0; out = ""
                 for (i = 1; i <= n; i++) {
                     if (l[i] ~ /^Types:/) { types = l[i]; l[i] = "Types: deb-src" }
                     if (l[i] ~ /^URIs:/ && tolower(l[i]) ~ /debian/) uri = 1
                     if (l[i] !~ /^#/) out = out l[i] "\n"
                 }
                 if (types ~ /[[:space:]]deb([[:space:]]|$)/ && types !~ /deb-src/ && uri) printf "%s\n", out
             }' "$f"
    done)
    [ -n "$lines$stanzas" ] || die "no Debian 'deb' entry in /etc/apt to mirror as deb-src"
    if [ -n "$lines" ]; then printf '%s\n' "$lines" | as_root tee "$list" >/dev/null; fi
    if [ -n "$stanzas" ]; then printf '%s\n' "$stanzas" | as_root tee "$sources" >/dev/null; fi
    as_root apt-get update -qq >>"$LOG" 2>&1 || say "apt-get update reported errors (going on)"
    has_source || die "apt knows no source package $SRCPKG, even with deb-src entries ($list, $sources)"
fi

say "fetching the $SRCPKG source"
(cd "$WORK" && apt-get source --tar-only --download-only -q "$SRCPKG") >>"$LOG" 2>&1 \
    || die "apt-get source --tar-only $SRCPKG failed"
tarball=$(compgen -G "$WORK/${SRCPKG}_*.orig.tar.*" | head -n 1) \
    || die "apt-get source left no ${SRCPKG}_*.orig.tar.* in $WORK"
tar -C "$WORK" -xf "$tarball" --wildcards --no-wildcards-match-slash '*/dpf' "*/plugins/$PLUGIN" >>"$LOG" 2>&1 \
    || die "cannot extract dpf/ and plugins/$PLUGIN from $(basename "$tarball")"
plugin_dir=$(compgen -G "$WORK/*/plugins/$PLUGIN" | head -n 1) || die "no plugins/$PLUGIN in $(basename "$tarball")"

# --- build --------------------------------------------------------------------------------
# PKG_CONFIG=false and HAVE_DGL=false: no UI (no OpenGL/Cairo/X11 needed), whatever is installed.
say "building $PLUGIN.vst3"
make -C "$plugin_dir" -j2 vst3 PKG_CONFIG=false HAVE_DGL=false HAVE_OPENGL=false HAVE_CAIRO=false \
    >>"$LOG" 2>&1 || die "make vst3 for $PLUGIN failed"
built="$plugin_dir/../../bin/$PLUGIN.vst3"
compgen -G "$built/Contents/*-linux/$PLUGIN.so" >/dev/null || die "make succeeded but left no $PLUGIN.vst3/Contents/*-linux/$PLUGIN.so"

# --- install ------------------------------------------------------------------------------
tmp="$DEST/.$PLUGIN.vst3.tmp.$$"
rm -rf "$tmp"
cp -R "$built" "$tmp" 2>>"$LOG" || die "cannot copy the bundle into $DEST"
rm -rf "$BUNDLE"
mv "$tmp" "$BUNDLE" 2>>"$LOG" || die "cannot move the bundle to $BUNDLE"
echo "$BUNDLE"
