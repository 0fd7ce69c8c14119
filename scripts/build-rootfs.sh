#!/usr/bin/env bash
# Build the minivmm Debian guest's root filesystem: debootstrap --variant=minbase
# bookworm with fio, e2fsprogs, util-linux and procps, plus /sbin/minivmm-init
# and the workloads from guest/rootfs/, as a raw ext4 image (mkfs.ext4 -d, no
# loop mount). Boot it with the distro kernel (scripts/build-guest.sh --flavour
# distro) and configs/debian.toml.
#
# Everything is written under the cache, never into the repository:
#   ${MINIVMM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minivmm}/rootfs/
#     debs/             downloaded .debs (debootstrap --cache-dir), reused
#     tree-<thash>/     the debootstrap tree; <thash> = sha256 over suite,
#                       variant, package list, mirror and architecture
#     <hash>/debian.img pristine image; <hash> = sha256 over <thash>, every file
#                       in guest/rootfs/, this script and the image size
#     current -> <hash> the last successful build (older <hash>/ are removed)
#     debian.img        the working copy configs/debian.toml boots: created
#                       from current/debian.img when missing (--reset replaces
#                       it); a guest writes to it, the pristine image stays as is
#
# stdout: only the path of the pristine image (progress goes to stderr).
# Usage: scripts/build-rootfs.sh [--reset]
# Environment: MINIVMM_CACHE, XDG_CACHE_HOME, MINIVMM_DEBIAN_MIRROR
# (default http://deb.debian.org/debian), MINIVMM_ROOTFS_SIZE (default 1G).
# Needs root (debootstrap) and the debootstrap package (installed if missing).
set -euo pipefail

readonly SUITE=bookworm
readonly VARIANT=minbase
readonly ARCH=amd64
readonly PACKAGES=fio,e2fsprogs,util-linux,procps
readonly MIRROR=${MINIVMM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly SIZE=${MINIVMM_ROOTFS_SIZE:-1G}

SCRIPT_PATH=$(readlink -f -- "${BASH_SOURCE[0]}")
REPO_ROOT=$(cd -- "$(dirname -- "$SCRIPT_PATH")/.." && pwd -P)
readonly SCRIPT_PATH REPO_ROOT
readonly FILES_DIR=$REPO_ROOT/guest/rootfs
CACHE_ROOT=$(readlink -m -- "${MINIVMM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minivmm}/rootfs")
readonly CACHE_ROOT
readonly START_SECONDS=$SECONDS
phase_start=$SECONDS

log() { printf '[build-rootfs %4ds] %s\n' $((SECONDS - START_SECONDS)) "$*" >&2; }
die() { printf 'build-rootfs: error: %s\n' "$*" >&2; exit 1; }
phase() { phase_start=$SECONDS; log "$*"; }
phase_done() { log "  done in $((SECONDS - phase_start))s"; }

RESET=0
for arg in "$@"; do
	case $arg in
	--reset) RESET=1 ;;
	*) printf 'build-rootfs: error: unknown argument %s (usage: %s [--reset])\n' "$arg" "$0" >&2; exit 64 ;;
	esac
done

case "$CACHE_ROOT/" in
"$REPO_ROOT"/*) die "cache $CACHE_ROOT is inside the repository; set MINIVMM_CACHE elsewhere" ;;
esac

rootfs_files() { (cd -- "$FILES_DIR" && find . -type f -printf '%P\n' | LC_ALL=C sort); }

tree_hash() {
	printf 'suite %s\nvariant %s\narch %s\npackages %s\nmirror %s\n' \
		"$SUITE" "$VARIANT" "$ARCH" "$PACKAGES" "$MIRROR" | sha256sum | cut -d' ' -f1
}

image_hash() {
	local f
	{
		printf 'tree %s\nsize %s\n' "$1" "$SIZE"
		printf 'file scripts/build-rootfs.sh %s\n' "$(sha256sum <"$SCRIPT_PATH" | cut -d' ' -f1)"
		while IFS= read -r f; do
			printf 'file guest/rootfs/%s %s %s\n' "$f" "$(stat -c %a "$FILES_DIR/$f")" \
				"$(sha256sum <"$FILES_DIR/$f" | cut -d' ' -f1)"
		done < <(rootfs_files)
	} | sha256sum | cut -d' ' -f1
}

need_tools() {
	command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 missing: apt-get install e2fsprogs"
	if ! command -v debootstrap >/dev/null; then
		(($(id -u) == 0)) || die "debootstrap missing: sudo apt-get install debootstrap"
		phase "installing debootstrap (apt-get)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2 ||
			{ apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2; } ||
			die "could not install debootstrap"
		phase_done
	fi
}

# debootstrap into tree-<thash>.partial, renamed when complete.
build_tree() {
	local tree=$1
	[[ -f $tree/.minivmm-complete ]] && return 0
	(($(id -u) == 0)) || die "debootstrap needs root (run as root or with sudo)"
	rm -rf -- "$tree.partial"
	mkdir -p -- "$tree.partial" "$CACHE_ROOT/debs"
	phase "debootstrap --variant=$VARIANT $SUITE + $PACKAGES from $MIRROR (log: $CACHE_ROOT/debootstrap.log)"
	# Progress: one line per package as debootstrap fetches, unpacks, configures.
	if ! debootstrap --variant="$VARIANT" --arch="$ARCH" --include="$PACKAGES" \
		--cache-dir="$CACHE_ROOT/debs" "$SUITE" "$tree.partial" "$MIRROR" 2>&1 |
		tee "$CACHE_ROOT/debootstrap.log" |
		grep --line-buffered -E '^I: (Retrieving|Validating|Extracting|Unpacking|Configuring|Installing|Base system)' |
		awk -v start="$SECONDS" '{ n++; if (n % 25 == 0 || /Base system|Installing/) { printf "[build-rootfs] debootstrap: %s\n", $0; fflush() } }' >&2
	then
		tail -n 20 "$CACHE_ROOT/debootstrap.log" >&2
		die "debootstrap failed (see $CACHE_ROOT/debootstrap.log)"
	fi
	grep -q '^I: Base system installed successfully' "$CACHE_ROOT/debootstrap.log" ||
		{ tail -n 20 "$CACHE_ROOT/debootstrap.log" >&2; die "debootstrap did not finish"; }
	# Smaller image: no downloaded debs, apt lists, docs or man pages.
	rm -rf -- "$tree.partial"/var/cache/apt/archives/*.deb "$tree.partial"/var/lib/apt/lists/* \
		"$tree.partial"/usr/share/doc/* "$tree.partial"/usr/share/man/* "$tree.partial"/usr/share/info/*
	touch -- "$tree.partial/.minivmm-complete"
	rm -rf -- "$tree"
	mv -T -- "$tree.partial" "$tree"
	phase_done
}

# The tree plus our files, in a staging copy (hard links: cheap), then mkfs.ext4 -d.
build_image() {
	local tree=$1 out=$CACHE_ROOT/$2 stage=$CACHE_ROOT/stage.partial f
	phase "assembling the root: $(du -sh "$tree" | cut -f1) tree + guest/rootfs/"
	rm -rf -- "$stage" "$out.partial"
	cp -al -- "$tree" "$stage"
	rm -f -- "$stage/.minivmm-complete"
	install -m 0755 -- "$FILES_DIR/minivmm-init" "$stage/sbin/minivmm-init"
	mkdir -p -- "$stage/usr/local/lib/minivmm/workloads"
	for f in "$FILES_DIR"/workloads/*; do
		[[ -f $f ]] || continue
		rm -f -- "$stage/usr/local/lib/minivmm/workloads/${f##*/}"
		install -m 0755 -- "$f" "$stage/usr/local/lib/minivmm/workloads/${f##*/}"
	done
	# Files we change are replaced, never edited in place (they are hard links into the tree).
	rm -f -- "$stage/etc/hostname" "$stage/etc/fstab" "$stage/etc/motd"
	echo minivmm >"$stage/etc/hostname"
	printf '/dev/vda / ext4 rw,relatime 0 1\n' >"$stage/etc/fstab"
	# Root without a password (console only; the guest has no network).
	rm -f -- "$stage/etc/shadow.new"
	sed 's/^root:[^:]*:/root::/' "$stage/etc/shadow" >"$stage/etc/shadow.new"
	rm -f -- "$stage/etc/shadow"
	mv -- "$stage/etc/shadow.new" "$stage/etc/shadow"
	chmod 640 "$stage/etc/shadow"
	chgrp shadow "$stage/etc/shadow" 2>/dev/null || true
	phase_done

	phase "mkfs.ext4 -d: $SIZE sparse image"
	mkdir -p -- "$out.partial"
	truncate -s "$SIZE" "$out.partial/debian.img"
	mkfs.ext4 -q -F -L minivmm-debian -d "$stage" "$out.partial/debian.img" >&2
	rm -rf -- "$stage"
	{
		printf 'suite=%s variant=%s arch=%s packages=%s mirror=%s size=%s\n' "$SUITE" "$VARIANT" "$ARCH" "$PACKAGES" "$MIRROR" "$SIZE"
		printf 'fio=%s\n' "$(cat "$tree/var/lib/dpkg/status" | awk '/^Package: fio$/{f=1} f&&/^Version:/{print $2; exit}')"
	} >"$out.partial/manifest"
	rm -rf -- "$out"
	mv -T -- "$out.partial" "$out"
	log "  image: $(du -h --apparent-size "$out/debian.img" | cut -f1) apparent, $(du -h "$out/debian.img" | cut -f1) allocated"
	phase_done
}

main() {
	mkdir -p -- "$CACHE_ROOT"
	exec 9>"$CACHE_ROOT/.lock"
	if ! flock -n 9; then
		log "another build-rootfs.sh holds $CACHE_ROOT/.lock; waiting"
		flock 9
	fi
	local thash hash
	thash=$(tree_hash)
	hash=$(image_hash "$thash")
	if [[ -f $CACHE_ROOT/$hash/debian.img ]]; then
		log "up to date (inputs ${hash:0:12})"
	else
		log "building Debian $SUITE root image: inputs ${hash:0:12}, cache $CACHE_ROOT"
		need_tools
		build_tree "$CACHE_ROOT/tree-$thash"
		build_image "$CACHE_ROOT/tree-$thash" "$hash"
		log "built in $((SECONDS - START_SECONDS))s: $CACHE_ROOT/$hash/debian.img"
	fi
	ln -sfn -- "$hash" "$CACHE_ROOT/current.new"
	mv -T -- "$CACHE_ROOT/current.new" "$CACHE_ROOT/current"
	# Images of older inputs are 250+ MiB each: keep only the current one.
	local d
	for d in "$CACHE_ROOT"/*; do
		[[ ${d##*/} =~ ^[0-9a-f]{64}$ && ${d##*/} != "$hash" ]] && rm -rf -- "$d"
	done
	# The working copy for configs/debian.toml.
	if ((RESET)) || [[ ! -f $CACHE_ROOT/debian.img ]]; then
		cp --sparse=always -- "$CACHE_ROOT/$hash/debian.img" "$CACHE_ROOT/debian.img.new"
		mv -- "$CACHE_ROOT/debian.img.new" "$CACHE_ROOT/debian.img"
		echo "$hash" >"$CACHE_ROOT/debian.img.source"
		log "working copy: $CACHE_ROOT/debian.img (fresh)"
	elif [[ $(cat "$CACHE_ROOT/debian.img.source" 2>/dev/null) != "$hash" ]]; then
		log "note: $CACHE_ROOT/debian.img is from an older build; --reset replaces it"
	fi
	printf '%s\n' "$CACHE_ROOT/$hash/debian.img"
}

main
