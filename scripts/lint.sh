#!/usr/bin/env bash
# The code habits check: formatting against .clang-format and
# static checks against .clang-tidy, over every C++ file of the project.
#
# usage: scripts/lint.sh [--format-only | --tidy-only] [--fix] [--quiet] [FILE...]
#   --format-only   only clang-format --dry-run -Werror
#   --tidy-only     only clang-tidy (bugprone-*, readability-function-size)
#   --fix           rewrite files with clang-format -i instead of checking
#                   (formatting only; clang-tidy findings are never auto-fixed)
#   --quiet         print only the summary lines, not each finding
#   FILE...         check these files instead of the whole tree
#
# Files: every tracked *.cpp and *.h outside guest/ (the guest agent is Linux
# kernel C in the kernel's style). clang-tidy needs a compilation database: it
# reads ${MINIVMM_BUILD_DIR:-build}/compile_commands.json and configures that
# build directory first if it has none; it checks the .cpp files listed there
# (headers through .clang-tidy's HeaderFilterRegex), MINIVMM_LINT_JOBS at a
# time (default: nproc).
#
# Exit status: 0 when every check passed, 1 when a check found something,
# 2 for a usage or tool error.
set -euo pipefail
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$root"

do_format=1 do_tidy=1 fix=0 quiet=0
files=()
while [ $# -gt 0 ]; do
	case $1 in
	--format-only) do_tidy=0 ;;
	--tidy-only) do_format=0 ;;
	--fix) fix=1 ;;
	--quiet) quiet=1 ;;
	-h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "lint: unknown option $1" >&2; exit 2 ;;
	*) files+=("$1") ;;
	esac
	shift
done

clang_format=${CLANG_FORMAT:-clang-format}
clang_tidy=${CLANG_TIDY:-clang-tidy}
build_dir=${MINIVMM_BUILD_DIR:-build}
jobs=${MINIVMM_LINT_JOBS:-$(nproc)}

if [ ${#files[@]} -eq 0 ]; then
	mapfile -t files < <(git ls-files -- '*.cpp' '*.h' ':!:guest/**')
fi
[ ${#files[@]} -gt 0 ] || { echo "lint: no files" >&2; exit 2; }

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

exit $status
