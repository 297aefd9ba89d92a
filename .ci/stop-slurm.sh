#!/usr/bin/env bash
# Stop what .ci/start-slurm.sh started: sshd (ours, by its pid file), slurmd, slurmctld. munged is left
# running (other programs on the machine may authenticate with it); pass --munge to stop it too.
# The state folder (.slurm/: keys, logs, job state) stays, so a later start is fast; delete it to reset.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${MOFAL_SLURM_DIR:-$PWD/.slurm}

stop() {  # stop <name> <pidfile>: TERM, wait up to 10 s, then KILL
  local name=$1 pidfile=$2 pid
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    echo "stop-slurm: stopping $name ($pid)"
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidfile"
}

stop sshd "$STATE/sshd.pid"
stop slurmd "$STATE/slurmd.pid"
stop slurmctld "$STATE/slurmctld.pid"
if [ "$(cat /run/mofal-slurm.state 2>/dev/null)" = "$STATE" ]; then rm -f /run/mofal-slurm.state; fi
if [ "${1:-}" = "--munge" ] && [ -s /run/munge/munged.pid ]; then
  stop munged /run/munge/munged.pid
fi
