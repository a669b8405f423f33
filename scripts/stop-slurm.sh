#!/bin/bash
# Stop the one-node Slurm started by scripts/start-slurm.sh (by its pid files), and munged if that script
# started it.  State stays in $DIA_SLURM_DIR (default /tmp/dia_pipe_slurm) unless --purge is given.
set -uo pipefail

STATE_DIR=${DIA_SLURM_DIR:-/tmp/dia_pipe_slurm}

stop_pidfile() {
    local pidfile=$1
    [[ -f "$pidfile" ]] || return 0
    local pid
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$pidfile"
}

stop_pidfile "$STATE_DIR/run/slurmd.pid"
stop_pidfile "$STATE_DIR/run/slurmctld.pid"
if [[ -f "$STATE_DIR/munged.started-by-us" ]]; then
    stop_pidfile /var/run/munge/munged.pid
    rm -f "$STATE_DIR/munged.started-by-us"
fi
if [[ "${1:-}" == "--purge" ]]; then
    rm -rf "$STATE_DIR"
fi
echo "stop-slurm: stopped" >&2
