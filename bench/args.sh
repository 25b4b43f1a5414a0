# args.sh — the options the comparison scripts (experiments.sh, mnist.sh) share, sourced with
# the script's arguments:  [--full | --smoke] [--out DIR] [--help].
# Sets mode (full or smoke) and out ("" leaves the directory to the script's default);
# --help prints the script's header comment.
mode=full
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --full) mode=full ;;
        --smoke) mode=smoke ;;
        --out) out=$2; shift ;;
        --out=*) out=${1#--out=} ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "$(basename "$0"): unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
