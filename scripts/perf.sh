#!/usr/bin/env bash
# The one perf command: installs what is missing, builds the release preset, runs symphony-perf's
# standard matrix (or --quick), and writes the report (tables, targets, plots) with
# scripts/perf-report.py. With --update-readme it also regenerates README.md's performance
# section and the plots under docs/perf/.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/perf.sh [--quick] [--out DIR] [--update-readme] [-- SYMPHONY-PERF-OPTIONS...]

  --quick          symphony-perf --matrix quick: every transport at 64 B, both modes, under a
                   minute (default: --matrix standard, about 10 minutes on 2 cores)
  --out DIR        where results.json, hgrm/, table.txt, report.md and the plots go
                   (default: perf/results/<UTC date and time>-<commit>/)
  --update-readme  also replace README.md's section between <!-- perf-matrix:begin --> and
                   <!-- perf-matrix:end --> and the plots in docs/perf/ (standard matrix only)
  -- OPTIONS       passed on to symphony-perf (e.g. -- --transport floor,ring-spsc)
  -h, --help       this text

Exit status: 0 when the report was written (targets met or not: report.md says), non-zero if
setup, the build, a measurement or the report failed.
EOF
}

matrix=standard
out=
update_readme=false
extra=()
while (($#)); do
  case $1 in
    --quick) matrix=quick ;;
    --out)
      [[ $# -ge 2 ]] || { echo "perf: --out needs a directory" >&2; exit 2; }
      out=$2; shift ;;
    --out=*) out=${1#--out=} ;;
    --update-readme) update_readme=true ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "perf: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if $update_readme && [[ $matrix != standard || ${#extra[@]} -gt 0 ]]; then
  echo "perf: --update-readme takes the README's numbers from the whole standard matrix:" \
       "not with --quick or symphony-perf options" >&2
  exit 2
fi

cd "$(dirname "$0")/.."
repo=$PWD
perf_binary=build/release/perf/symphony-perf

commit_label() {  # the short commit, "-dirty" when the tree has changes; "unknown" outside git
  local commit
  commit=$(git rev-parse --short HEAD 2>/dev/null) || { echo unknown; return; }
  git diff --quiet HEAD 2>/dev/null || commit+=-dirty
  echo "$commit"
}

if [[ -z $out ]]; then
  out=perf/results/$(date -u +%Y-%m-%dT%H%M%SZ)-$(commit_label)
fi

echo "perf: [1/4] setup (installs only what is missing)"
scripts/setup.sh
if $update_readme; then  # refuse a README without its markers now, not after the build and run
  scripts/perf-report.py --check-readme "$repo/README.md"
fi
echo "perf: [2/4] build (release preset)"
scripts/build.sh release
perf_help=$("$perf_binary" --help)
for option in --matrix --hgrm; do
  [[ $perf_help == *"$option"* ]] || {
    echo "perf: $perf_binary has no $option option: it predates the standard matrix" >&2
    exit 1
  }
done

mkdir -p "$out"
rm -rf "$out/hgrm" "$out/results.json" "$out/report.md"  # never show a previous run's results
echo "perf: [3/4] measure: symphony-perf --matrix $matrix ${extra[*]} (results in $out/)"
measured=0
"$perf_binary" --matrix "$matrix" --json "$out/results.json" --hgrm "$out/hgrm" "${extra[@]}" |
  tee "$out/table.txt" || measured=$?
# A measurement that failed is a row saying so in the JSON: report the rest, then fail.
[[ -f $out/results.json ]] || { echo "perf: symphony-perf wrote no results (exit $measured)" >&2; exit 1; }

echo "perf: [4/4] report"
report=(scripts/perf-report.py "$out/results.json" --out "$out")
if $update_readme && ((measured == 0)); then
  report+=(--update-readme "$repo/README.md" --readme-plots "$repo/docs/perf")
fi
"${report[@]}"
if ((measured != 0)); then
  echo "perf: symphony-perf failed (exit $measured): the failed rows are under \"Skipped\" in" \
       "$out/report.md" >&2
  if $update_readme; then echo "perf: README.md not updated: the run was not complete" >&2; fi
  exit 1
fi
echo "perf: done: $out/report.md"
