#!/usr/bin/env bash
# Print the path of a Python interpreter >= 3.12, searching PATH, then pyenv, then common prefixes.
# Exit 1 with a clear message when none is found.
set -u
candidates=()
for name in python3.13 python3.12 python3 python; do
    p=$(command -v "$name" 2>/dev/null) && candidates+=("$p")
done
if command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root 2>/dev/null)
    for d in "$root"/versions/3.1[2-9]*/bin/python3 "$root"/versions/3.1[2-9]*/bin/python; do
        [ -x "$d" ] && candidates+=("$d")
    done
fi
for d in /usr/bin/python3.1[2-9] /usr/local/bin/python3.1[2-9] "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3; do
    [ -x "$d" ] && candidates+=("$d")
done
for p in "${candidates[@]}"; do
    if "$p" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
        echo "$p"
        exit 0
    fi
done
echo "error: dia_pipe needs Python >= 3.12 (with venv); none found on PATH, in pyenv or /usr/bin." >&2
echo "       Install one (e.g. 'pyenv install 3.12') or put it on PATH, then rerun." >&2
exit 1
