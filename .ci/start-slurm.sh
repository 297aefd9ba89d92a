#!/usr/bin/env bash
# Start a real single-node SLURM reached over SSH on this machine, so that the remote path of aiida-mofal
# (core.ssh_async + core.slurm) is exercised against the real programs rather than mocks.
#
# What it does (idempotent: a second run only checks that everything answers):
#   - installs Debian's slurm-wlm, munge and openssh-server when they are missing (needs root);
#   - starts munged, then slurmctld + slurmd with this machine's cores: partition `cpu` (default) and,
#     only where `nvidia-smi -L` lists GPUs, a partition `gpu` whose node carries GRES gpu:N;
#   - starts an sshd on 127.0.0.1:$MOFAL_SLURM_SSH_PORT (default 22822) that accepts only a key this script
#     generates into the project-local folder $MOFAL_SLURM_DIR (default <repo>/.slurm, gitignored);
#   - writes the host alias `mofal-slurm` into ~/.ssh/config (a marked block, replaced on each run), which
#     is the hostname the AiiDA computer `slurm-localhost` uses (examples/computers/slurm-localhost.yaml).
# Stop everything with .ci/stop-slurm.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
STATE=${MOFAL_SLURM_DIR:-$REPO/.slurm}
PORT=${MOFAL_SLURM_SSH_PORT:-22822}
ALIAS=${MOFAL_SLURM_ALIAS:-mofal-slurm}
CONF_DIR=/etc/slurm
NODE=$(hostname -s)

log() { echo "start-slurm: $*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "start-slurm: must run as root (it starts slurmctld, slurmd, munged and sshd)" >&2
  exit 2
fi

# one run at a time: a test and a benchmark starting SLURM together must not install or start it twice
# (flock -o: the daemons started below must not inherit the lock)
if [ -z "${MOFAL_START_SLURM_LOCKED:-}" ]; then
  exec env MOFAL_START_SLURM_LOCKED=1 flock -w 900 -o /tmp/mofal-start-slurm.lock bash "$REPO/.ci/start-slurm.sh" "$@"
fi

# ---- packages ------------------------------------------------------------------------------------------
need=()
command -v slurmctld >/dev/null 2>&1 || need+=(slurm-wlm)
command -v munged >/dev/null 2>&1 || need+=(munge)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # policy-rc.d 101: the packages' own services must not start (we start them with our own settings).
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

# One instance per machine (the ports are fixed): one started from another checkout is stopped first.
RECORD=/run/mofal-slurm.state
if [ -s "$RECORD" ] && [ "$(cat "$RECORD")" != "$STATE" ] && [ -d "$(cat "$RECORD")" ]; then
  log "stopping the instance of $(cat "$RECORD")"
  MOFAL_SLURM_DIR=$(cat "$RECORD") bash "$REPO/.ci/stop-slurm.sh"
fi
mkdir -p "$STATE"/{log,ctld,spool,ssh,work} /run/munge /run/sshd /var/log/munge /var/lib/munge
echo "$STATE" > "$RECORD"
chmod 700 "$STATE/ssh"

# ---- munge -----------------------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
  log "creating /etc/munge/munge.key"
  mkdir -p /etc/munge
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  log "starting munged"
  if id munge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
  else
    /usr/sbin/munged --force
  fi
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi
munge -n | unmunge >/dev/null || { echo "start-slurm: munged does not answer" >&2; exit 1; }

# ---- slurm.conf ------------------------------------------------------------------------------------------
CPUS=${MOFAL_SLURM_CPUS:-$(nproc)}
MEM=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
NGPU=0
if command -v nvidia-smi >/dev/null 2>&1; then
  NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
fi
GRES_NODE=""
GRES_TYPES=""
if [ "$NGPU" -gt 0 ]; then
  GRES_NODE="Gres=gpu:$NGPU"
  GRES_TYPES="GresTypes=gpu"
fi

mkdir -p "$CONF_DIR"
new_conf=$(mktemp)
cat > "$new_conf" <<EOF
# Written by aiida-mofal .ci/start-slurm.sh: one node, this machine, for the remote-path tests.
ClusterName=mofal
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
# No cgroups in containers: track processes by their parent ids, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
# Jobs share the node by cores (several small labelling jobs at once).
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
# Fast turnaround for tests: backfill looks at the queue every second.
SchedulerParameters=bf_interval=1
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=300
KillWait=5
MessageTimeout=20
$GRES_TYPES
# Without a default, a job asks for the whole node's memory and jobs run one at a time.
DefMemPerCPU=$((MEM / CPUS))
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM $GRES_NODE State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
if [ "$NGPU" -gt 0 ]; then
  echo "PartitionName=gpu Nodes=$NODE Default=NO MaxTime=INFINITE State=UP" >> "$new_conf"
  : > "$CONF_DIR/gres.conf.new"
  for i in $(seq 0 $((NGPU - 1))); do echo "NodeName=$NODE Name=gpu File=/dev/nvidia$i" >> "$CONF_DIR/gres.conf.new"; done
  mv "$CONF_DIR/gres.conf.new" "$CONF_DIR/gres.conf"
fi
changed=0
if ! cmp -s "$new_conf" "$CONF_DIR/slurm.conf"; then
  mv "$new_conf" "$CONF_DIR/slurm.conf"
  chmod 644 "$CONF_DIR/slurm.conf"
  changed=1
else
  rm -f "$new_conf"
fi

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ "$changed" -eq 1 ]; then
  for pid in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
    if running "$pid"; then kill "$(cat "$pid")"; sleep 1; fi
  done
fi
if ! running "$STATE/slurmctld.pid"; then
  log "starting slurmctld ($CPUS cores, ${MEM} MB, $NGPU GPUs)"
  /usr/sbin/slurmctld
fi
if ! running "$STATE/slurmd.pid"; then
  log "starting slurmd"
  /usr/sbin/slurmd
fi
for _ in $(seq 100); do
  state=$(sinfo -h -N -o '%T' 2>/dev/null | head -1 || true)
  case "$state" in idle*|mix*|alloc*) break ;; esac
  sleep 0.2
done
case "$state" in
  idle*|mix*|alloc*) ;;
  drain*|down*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true; sleep 1 ;;
  *) echo "start-slurm: the node is '$state' (see $STATE/log/slurmd.log)" >&2; exit 1 ;;
esac

# ---- sshd on 127.0.0.1 with a generated key ------------------------------------------------------------
[ -s "$STATE/ssh/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$STATE/ssh/ssh_host_ed25519_key"
[ -s "$STATE/ssh/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C mofal-slurm -f "$STATE/ssh/id_ed25519"
cp "$STATE/ssh/id_ed25519.pub" "$STATE/ssh/authorized_keys"
chmod 600 "$STATE/ssh/authorized_keys"
cat > "$STATE/ssh/sshd_config" <<EOF
# Written by aiida-mofal .ci/start-slurm.sh
ListenAddress 127.0.0.1
Port $PORT
HostKey $STATE/ssh/ssh_host_ed25519_key
PidFile $STATE/sshd.pid
AuthorizedKeysFile $STATE/ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
MaxStartups 50:30:100
MaxSessions 50
EOF
if ! running "$STATE/sshd.pid"; then
  log "starting sshd on 127.0.0.1:$PORT"
  /usr/sbin/sshd -f "$STATE/ssh/sshd_config" -E "$STATE/log/sshd.log"
fi

mkdir -p ~/.ssh && chmod 700 ~/.ssh
touch ~/.ssh/config && chmod 600 ~/.ssh/config
begin="# >>> aiida-mofal $ALIAS >>>"
end="# <<< aiida-mofal $ALIAS <<<"
awk -v b="$begin" -v e="$end" '$0==b{skip=1} !skip{print} $0==e{skip=0}' ~/.ssh/config > ~/.ssh/config.new
cat >> ~/.ssh/config.new <<EOF
$begin
Host $ALIAS
  HostName 127.0.0.1
  Port $PORT
  User $(id -un)
  IdentityFile $STATE/ssh/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $STATE/ssh/known_hosts
  StrictHostKeyChecking accept-new
$end
EOF
mv ~/.ssh/config.new ~/.ssh/config
# asyncssh reads known_hosts itself: record the host key now (also under the alias).
key=$(cut -d' ' -f1,2 "$STATE/ssh/ssh_host_ed25519_key.pub")
printf '[127.0.0.1]:%s %s\n%s %s\n' "$PORT" "$key" "$ALIAS" "$key" > "$STATE/ssh/known_hosts"
grep -qF "[127.0.0.1]:$PORT $key" ~/.ssh/known_hosts 2>/dev/null || \
  printf '[127.0.0.1]:%s %s\n' "$PORT" "$key" >> ~/.ssh/known_hosts

for _ in $(seq 50); do
  ssh -o BatchMode=yes "$ALIAS" true 2>/dev/null && break
  sleep 0.1
done
ssh -o BatchMode=yes "$ALIAS" 'sinfo -h -o "%P %D %c %T"' | sed 's/^/start-slurm: sinfo over ssh: /' || {
  echo "start-slurm: ssh $ALIAS does not answer (see $STATE/log/sshd.log)" >&2
  exit 1
}
log "ready: ssh alias '$ALIAS', work directory $STATE/work"
