#!/usr/bin/env bash
# Build the minivmm guest kernel (vmlinux + bzImage) from Debian's
# linux-source-6.1: `make tinyconfig` + guest/kernel.config, with the in-guest
# agent (guest/agent) built in as drivers/misc/minivmm.
#
# Everything is written under the cache, never into the repository:
#   ${MINIVMM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minivmm}/guest/
#     src/<pkg>-<version>/     extracted source, once per package version
#     build/<pkg>-<version>/   O= build tree, reused so rebuilds are incremental
#     <hash>/                  vmlinux bzImage System.map .config for one input set
#     current -> <hash>        the last successful build
# <hash> = sha256 over guest/kernel.config, guest/agent/*, this script and the
# linux-source-6.1 package version; an existing <hash>/ means nothing to do.
#
# --flavour distro: tinyconfig + guest/kernel.config + guest/kernel-distro.config
# (later lines win) for the Debian root filesystem (scripts/build-rootfs.sh);
# its own build tree build/<pkg>-<version>-distro/, its <hash> also covers
# guest/kernel-distro.config, and the link is current-distro -> <hash>.
#
# stdout: only the path of vmlinux (progress and kernel build output go to
# stderr), so `vmlinux=$(scripts/build-guest.sh)` works.
# Usage: scripts/build-guest.sh [--flavour tiny|distro]   (default: tiny)
# Environment: MINIVMM_CACHE, XDG_CACHE_HOME, MINIVMM_JOBS (default: nproc).
set -euo pipefail

readonly SOURCE_PKG=linux-source-6.1
readonly SOURCE_TARBALL=/usr/src/linux-source-6.1.tar.xz
readonly KERNEL_ARCH=x86_64
# Debian packages the build needs (kernel build tools, objtool's libelf, LZ4 for bzImage).
readonly REQUIRED_PKGS=(make gcc libc6-dev flex bison bc libelf-dev libssl-dev xz-utils lz4 "$SOURCE_PKG")

SCRIPT_PATH=$(readlink -f -- "${BASH_SOURCE[0]}")
REPO_ROOT=$(cd -- "$(dirname -- "$SCRIPT_PATH")/.." && pwd -P)
readonly SCRIPT_PATH REPO_ROOT
readonly FRAGMENT=$REPO_ROOT/guest/kernel.config
readonly DISTRO_FRAGMENT=$REPO_ROOT/guest/kernel-distro.config
FLAVOUR=tiny
while (($# > 0)); do
	case $1 in
	--flavour) FLAVOUR=${2:-}; shift 2 || true ;;
	--flavour=*) FLAVOUR=${1#--flavour=}; shift ;;
	*) printf 'build-guest: error: unknown argument %s (usage: %s [--flavour tiny|distro])\n' "$1" "$0" >&2; exit 64 ;;
	esac
done
case $FLAVOUR in
tiny) FRAGMENTS=("$FRAGMENT") SUFFIX='' ;;
distro) FRAGMENTS=("$FRAGMENT" "$DISTRO_FRAGMENT") SUFFIX=-distro ;;
*) printf 'build-guest: error: unknown flavour %s (tiny or distro)\n' "$FLAVOUR" >&2; exit 64 ;;
esac
readonly FLAVOUR FRAGMENTS SUFFIX
readonly AGENT_DIR=$REPO_ROOT/guest/agent
CACHE_ROOT=$(readlink -m -- "${MINIVMM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minivmm}/guest")
readonly CACHE_ROOT
JOBS=${MINIVMM_JOBS:-$(nproc)}
readonly JOBS

readonly START_SECONDS=$SECONDS
phase_start=$SECONDS

log() { printf '[build-guest %4ds] %s\n' $((SECONDS - START_SECONDS)) "$*" >&2; }
die() { printf 'build-guest: error: %s\n' "$*" >&2; exit 1; }
phase() { phase_start=$SECONDS; log "$*"; }
phase_done() { log "  done in $((SECONDS - phase_start))s"; }

check_packages() {
	local missing=() pkg
	for pkg in "${REQUIRED_PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
	done
	((${#missing[@]} == 0)) ||
		die "missing Debian package(s): ${missing[*]} -- run scripts/install-deps.sh"
	[[ -r $SOURCE_TARBALL ]] ||
		die "$SOURCE_TARBALL not found although $SOURCE_PKG is installed -- run scripts/install-deps.sh"
	local f
	for f in "${FRAGMENTS[@]}"; do
		[[ -r $f ]] || die "config fragment $f not found"
	done
	[[ -d $AGENT_DIR ]] || die "agent sources $AGENT_DIR not found"
}

# The cache must not be inside the repository (this script never writes there).
check_cache_location() {
	case "$CACHE_ROOT/" in
	"$REPO_ROOT"/*) die "cache $CACHE_ROOT is inside the repository; set MINIVMM_CACHE elsewhere" ;;
	esac
}

agent_files() { (cd -- "$AGENT_DIR" && find . -type f -printf '%P\n' | LC_ALL=C sort); }

# sha256 over every input, each named, so renames and moves change the hash too.
input_hash() {
	local version=$1 f
	{
		printf 'package %s %s\n' "$SOURCE_PKG" "$version"
		printf 'arch %s\n' "$KERNEL_ARCH"
		printf 'file guest/kernel.config %s\n' "$(sha256sum <"$FRAGMENT" | cut -d' ' -f1)"
		if [[ $FLAVOUR != tiny ]]; then
			printf 'flavour %s\n' "$FLAVOUR"
			printf 'file guest/kernel-distro.config %s\n' "$(sha256sum <"$DISTRO_FRAGMENT" | cut -d' ' -f1)"
		fi
		printf 'file scripts/build-guest.sh %s\n' "$(sha256sum <"$SCRIPT_PATH" | cut -d' ' -f1)"
		while IFS= read -r f; do
			printf 'file guest/agent/%s %s\n' "$f" "$(sha256sum <"$AGENT_DIR/$f" | cut -d' ' -f1)"
		done < <(agent_files)
	} | sha256sum | cut -d' ' -f1
}

# Extract once per package version; the marker is written last so an
# interrupted extraction is redone rather than trusted.
extract_source() {
	local src=$1
	[[ -f $src/.minivmm-extracted ]] && return 0
	phase "extracting $SOURCE_TARBALL into $src"
	rm -rf -- "$src" "$src.partial"
	mkdir -p -- "$src.partial"
	tar -xJf "$SOURCE_TARBALL" -C "$src.partial" --strip-components=1
	touch -- "$src.partial/.minivmm-extracted"
	mv -T -- "$src.partial" "$src"
	phase_done
}

# drivers/misc must source our Kconfig and descend into minivmm/; edits are
# idempotent so re-runs leave the tree as is.
hook_agent_into_tree() {
	local src=$1 kconfig=$1/drivers/misc/Kconfig makefile=$1/drivers/misc/Makefile line
	if ! grep -qF 'source "drivers/misc/minivmm/Kconfig"' "$kconfig"; then
		line=$(grep -n '^endmenu' "$kconfig" | tail -n1 | cut -d: -f1)
		[[ -n $line ]] || die "no closing endmenu in $kconfig; cannot hook the agent"
		sed -i "${line}i source \"drivers/misc/minivmm/Kconfig\"" "$kconfig"
	fi
	grep -qF 'obj-$(CONFIG_MINIVMM_AGENT)' "$makefile" ||
		printf '%s\n' 'obj-$(CONFIG_MINIVMM_AGENT)	+= minivmm/' >>"$makefile"
}

# Copy only changed files (unchanged mtimes keep the rebuild incremental) and
# drop files that no longer exist in guest/agent.
sync_agent() {
	local dest=$1/drivers/misc/minivmm f
	mkdir -p -- "$dest"
	while IFS= read -r f; do
		if ! cmp -s -- "$AGENT_DIR/$f" "$dest/$f"; then
			mkdir -p -- "$(dirname -- "$dest/$f")"
			cp -- "$AGENT_DIR/$f" "$dest/$f"
		fi
	done < <(agent_files)
	while IFS= read -r f; do
		[[ -e $AGENT_DIR/$f ]] || rm -f -- "$dest/$f"
	done < <(cd -- "$dest" && find . -type f -printf '%P\n')
}

kmake() {
	make --no-print-directory -C "$SRC" O="$BUILD" ARCH="$KERNEL_ARCH" \
		KBUILD_BUILD_USER=minivmm KBUILD_BUILD_HOST=minivmm "$@"
}

configure() {
	phase "configuring: tinyconfig + ${FRAGMENTS[*]#"$REPO_ROOT/"} (log: $BUILD/configure.log)"
	local log=$BUILD/configure.log
	# tinyconfig and olddefconfig report every overridden choice; keep that
	# in the log and show it only when a step fails.
	{
		kmake tinyconfig &&
			# merge_config.sh writes temporary files into the current directory.
			(cd -- "$BUILD" && "$SRC/scripts/kconfig/merge_config.sh" -m -O "$BUILD" "$BUILD/.config" "${FRAGMENTS[@]}") &&
			kmake olddefconfig
	} >"$log" 2>&1 || { cat -- "$log" >&2; die "kernel configuration failed (see above)"; }
	phase_done
}

# Every option in the fragment must be in .config exactly as requested;
# kconfig silently drops options with unmet dependencies or misspelled names.
verify_config() {
	local config=$BUILD/.config bad=() line sym want got frag
	local -A wanted=()
	local order=()
	for frag in "${FRAGMENTS[@]}"; do
	while IFS= read -r line || [[ -n $line ]]; do
		if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
			sym=${BASH_REMATCH[1]} want=${BASH_REMATCH[2]}
		elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			sym=${BASH_REMATCH[1]} want=n
		elif [[ $line =~ ^[[:space:]]*(#.*)?$ ]]; then
			continue
		else
			bad+=("unparsable fragment line: $line")
			continue
		fi
		# A later fragment overrides an earlier one.
		[[ -v wanted[$sym] ]] || order+=("$sym")
		wanted[$sym]=$want
	done <"$frag"
	done
	for sym in "${order[@]}"; do
		want=${wanted[$sym]}
		got=$(grep -E "^${sym}=" "$config" | tail -n1 | cut -d= -f2- || true)
		if [[ $want == n ]]; then
			[[ -z $got || $got == n ]] || bad+=("$sym: requested not set, got $got")
		elif [[ $got != "$want" ]]; then
			bad+=("$sym: requested $want, got ${got:-not set (unmet dependency or unknown symbol?)}")
		fi
	done
	if ((${#bad[@]} > 0)); then
		printf 'build-guest: error: %s options that did not take:\n' "${FRAGMENTS[*]#"$REPO_ROOT/"}" >&2
		printf '  %s\n' "${bad[@]}" >&2
		exit 1
	fi
	log "verified: every option in ${FRAGMENTS[*]#"$REPO_ROOT/"} is set as requested"
}

compile() {
	phase "compiling vmlinux + bzImage with -j$JOBS"
	kmake -j"$JOBS" vmlinux bzImage >&2
	phase_done
}

# Publish atomically: a complete <hash>/ first, then swing `current` to it.
publish() {
	local out=$CACHE_ROOT/$HASH
	rm -rf -- "$out.partial"
	mkdir -p -- "$out.partial"
	cp -- "$BUILD/vmlinux" "$BUILD/arch/x86/boot/bzImage" "$BUILD/System.map" "$BUILD/.config" "$out.partial/"
	rm -rf -- "$out"
	mv -T -- "$out.partial" "$out"
	link_current
}

link_current() {
	ln -sfn -- "$HASH" "$CACHE_ROOT/current$SUFFIX.new"
	mv -T -- "$CACHE_ROOT/current$SUFFIX.new" "$CACHE_ROOT/current$SUFFIX"
}

main() {
	check_packages
	check_cache_location
	local version
	version=$(dpkg-query -W -f='${Version}' "$SOURCE_PKG")
	HASH=$(input_hash "$version")
	SRC=$CACHE_ROOT/src/$SOURCE_PKG-$version
	BUILD=$CACHE_ROOT/build/$SOURCE_PKG-$version$SUFFIX
	readonly HASH SRC BUILD

	mkdir -p -- "$CACHE_ROOT"
	# One build at a time per cache and flavour (each flavour has its own
	# build tree; the source tree is shared, and its preparation is idempotent).
	exec 9>"$CACHE_ROOT/.lock$SUFFIX"
	if ! flock -n 9; then
		log "another build-guest.sh holds $CACHE_ROOT/.lock$SUFFIX; waiting"
		flock 9
	fi

	if [[ -f $CACHE_ROOT/$HASH/vmlinux ]]; then
		link_current
		log "up to date ($SOURCE_PKG $version, inputs ${HASH:0:12})"
	else
		log "building $FLAVOUR guest kernel: $SOURCE_PKG $version, inputs ${HASH:0:12}, cache $CACHE_ROOT"
		exec 8>"$CACHE_ROOT/.src-lock"
		flock 8
		extract_source "$SRC"
		hook_agent_into_tree "$SRC"
		sync_agent "$SRC"
		exec 8>&-
		mkdir -p -- "$BUILD"
		configure
		verify_config
		compile
		publish
		log "built in $((SECONDS - START_SECONDS))s: $CACHE_ROOT/$HASH"
	fi
	printf '%s\n' "$CACHE_ROOT/current$SUFFIX/vmlinux"
}

main "$@"
