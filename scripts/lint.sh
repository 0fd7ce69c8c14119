#!/usr/bin/env bash
# The code habits check: formatting against .clang-format and
# static checks against .clang-tidy, over every C++ file of the project;
# its shell scripts through shellcheck and its Python through pyflakes.
#
# usage: scripts/lint.sh [--format-only | --tidy-only | --shell-only | --python-only]
#                        [--fix] [--quiet] [FILE...]
#   --format-only   only clang-format --dry-run -Werror
#   --tidy-only     only clang-tidy (bugprone-*, readability-function-size)
#   --shell-only    only shellcheck (scripts/*.sh, tools/*.sh, tests/**/*.sh, .ci/run)
#   --python-only   only pyflakes (every tracked *.py: undefined names, unused
#                   imports and variables, redefinitions; no style rules)
#   --fix           rewrite files with clang-format -i instead of checking
#                   (formatting only; clang-tidy findings are never auto-fixed)
#   --quiet         print only the summary lines, not each finding
#   FILE...         check these files instead of the whole tree
#
# Files (C++ checks): every tracked *.cpp and *.h outside guest/ (the guest agent is Linux
# kernel C in the kernel's style). clang-tidy needs a compilation database: it
# reads ${MINIVMM_BUILD_DIR:-build}/compile_commands.json and configures that
# build directory first if it has none; it checks the .cpp files listed there
# (headers through .clang-tidy's HeaderFilterRegex), MINIVMM_LINT_JOBS at a
# time (default: nproc).
#
# FILE... applies to the C++ checks only.
#
# Exit status: 0 when every check passed, 1 when a check found something,
# 2 for a usage or tool error.
set -euo pipefail
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$root"

do_format=1 do_tidy=1 do_shell=1 do_python=1 fix=0 quiet=0
files=()
while [ $# -gt 0 ]; do
	case $1 in
	--format-only) do_tidy=0 do_shell=0 do_python=0 ;;
	--tidy-only) do_format=0 do_shell=0 do_python=0 ;;
	--shell-only) do_format=0 do_tidy=0 do_python=0 ;;
	--python-only) do_format=0 do_tidy=0 do_shell=0 ;;
	--fix) fix=1 ;;
	--quiet) quiet=1 ;;
	-h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "lint: unknown option $1" >&2; exit 2 ;;
	*) files+=("$1") ;;
	esac
	shift
done

clang_format=${CLANG_FORMAT:-clang-format}
clang_tidy=${CLANG_TIDY:-clang-tidy}
build_dir=${MINIVMM_BUILD_DIR:-build}
jobs=${MINIVMM_LINT_JOBS:-$(nproc)}

if [ ${#files[@]} -eq 0 ] && [ $((do_format + do_tidy)) -gt 0 ]; then
	mapfile -t files < <(git ls-files -- '*.cpp' '*.h' ':!:guest/**')
	[ ${#files[@]} -gt 0 ] || { echo "lint: no files" >&2; exit 2; }
fi

status=0

if [ $do_format = 1 ]; then
	command -v "$clang_format" >/dev/null || { echo "lint: $clang_format not found (apt-get install clang-format)" >&2; exit 2; }
	if [ $fix = 1 ]; then
		printf '%s\0' "${files[@]}" | xargs -0 -n 16 -P "$jobs" "$clang_format" -i --style=file
		echo "lint: format: rewrote ${#files[@]} files in place"
	else
		bad=()
		for f in "${files[@]}"; do
			if ! out=$("$clang_format" --dry-run -Werror --style=file "$f" 2>&1); then
				bad+=("$f")
				[ $quiet = 1 ] || printf '%s\n' "$out"
			fi
		done
		if [ ${#bad[@]} -gt 0 ]; then
			echo "lint: format: ${#bad[@]} of ${#files[@]} files differ from .clang-format (scripts/lint.sh --fix rewrites them):"
			printf '  %s\n' "${bad[@]}"
			status=1
		else
			echo "lint: format: ${#files[@]} files clean"
		fi
	fi
fi

if [ $do_tidy = 1 ]; then
	command -v "$clang_tidy" >/dev/null || { echo "lint: $clang_tidy not found (apt-get install clang-tidy)" >&2; exit 2; }
	db=$build_dir/compile_commands.json
	if [ ! -f "$db" ]; then
		echo "lint: tidy: no $db; configuring $build_dir"
		cmake -S . -B "$build_dir" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
	fi
	# The translation units: the requested .cpp files that the build compiles.
	mapfile -t units < <(python3 - "$db" "${files[@]}" <<-'EOF'
		import json, os, sys
		db, wanted = sys.argv[1], sys.argv[2:]
		compiled = {os.path.realpath(e["file"]) for e in json.load(open(db))}
		for f in wanted:
		    if f.endswith(".cpp") and os.path.realpath(f) in compiled:
		        print(f)
		EOF
	)
	if [ ${#units[@]} -eq 0 ]; then
		echo "lint: tidy: none of the files is compiled in $db"
	else
		log=$(mktemp)
		trap 'rm -f "$log"' EXIT
		printf '%s\0' "${units[@]}" |
			xargs -0 -n 1 -P "$jobs" "$clang_tidy" -p "$build_dir" --quiet >"$log" 2>/dev/null || true
		# A header's finding shows once per unit that includes it: count each once.
		findings=$(grep -E '^[^ ].*:[0-9]+:[0-9]+: (warning|error): ' "$log" | sort -u || true)
		count=$(printf '%s' "$findings" | grep -c . || true)
		if [ "$count" -gt 0 ]; then
			[ $quiet = 1 ] || cat "$log"
			echo "lint: tidy: $count findings in ${#units[@]} translation units; by check:"
			printf '%s\n' "$findings" | sed -E 's/.*\[([^]]+)\]$/\1/' | sort | uniq -c | sort -rn | sed 's/^/  /'
			status=1
		else
			echo "lint: tidy: ${#units[@]} translation units clean"
		fi
	fi
fi

if [ $do_shell = 1 ]; then
	command -v shellcheck >/dev/null || { echo "lint: shellcheck not found (apt-get install shellcheck)" >&2; exit 2; }
	mapfile -t scripts < <(git ls-files -- 'scripts/*.sh' 'tools/*.sh' 'tests/**/*.sh' .ci/run)
	# Per-file options, each for one finding that stays, with why:
	# - build-guest.sh and build-rootfs.sh are hashed into their cached
	#   artifacts' input keys, so an edit rebuilds the guest kernel or root
	#   image for everyone: SC2016 there is Makefile text written literally
	#   ('obj-$(CONFIG_...)' must not expand); SC2002 is a useless cat (style).
	# - nested-kvm-init.sh runs under busybox ash, which shellcheck checks as dash.
	opts_for() {
		case $1 in
		scripts/build-guest.sh) echo --exclude=SC2016 ;;
		scripts/build-rootfs.sh) echo --exclude=SC2002 ;;
		tools/nested-kvm-init.sh) echo --shell=dash ;;
		esac
	}
	unclean=0
	for f in "${scripts[@]}"; do
		# shellcheck disable=SC2046  # opts_for prints zero or one word
		if ! out=$(shellcheck $(opts_for "$f") "$f" 2>&1); then
			unclean=$((unclean + 1))
			[ $quiet = 1 ] || printf '%s\n' "$out"
		fi
	done
	if [ $unclean -gt 0 ]; then
		echo "lint: shellcheck: $unclean of ${#scripts[@]} scripts have findings"
		status=1
	else
		echo "lint: shellcheck: ${#scripts[@]} scripts clean"
	fi
fi

if [ $do_python = 1 ]; then
	pyflakes=${PYFLAKES:-pyflakes3}
	command -v "$pyflakes" >/dev/null || { echo "lint: $pyflakes not found (apt-get install python3-pyflakes)" >&2; exit 2; }
	mapfile -t pyfiles < <(git ls-files -- '*.py')
	if out=$("$pyflakes" "${pyfiles[@]}" 2>&1); then
		echo "lint: pyflakes: ${#pyfiles[@]} files clean"
	else
		[ $quiet = 1 ] || printf '%s\n' "$out"
		echo "lint: pyflakes: $(printf '%s\n' "$out" | grep -c .) findings in ${#pyfiles[@]} files"
		status=1
	fi
fi

exit $status
