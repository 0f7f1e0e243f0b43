#!/usr/bin/env bash
# A real one-node Slurm cluster for the batch tests (tests/test_batch_slurm.py), from Debian's packages:
# munge + slurmctld + slurmd started by hand (no systemd), configured for this machine (hostname -s, its CPUs and
# memory) without cgroups. Idempotent: a second run reuses the installed packages and running daemons.
# Needs root (or sudo) and apt-get; elsewhere it says why and exits 0 so that `make test` still runs (the slow test
# then skips with that reason, except on CI where it fails). Usage: bash scripts/slurm-test-cluster.sh
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "slurm-test-cluster: no apt-get on this machine; not installing Slurm" >&2; exit 0
fi
if [ -n "$SUDO" ] && ! sudo -n true 2>/dev/null; then
  echo "slurm-test-cluster: not root and no password-less sudo; not installing Slurm" >&2; exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# munge: one key shared by every daemon (the package usually creates it; make sure).
if [ ! -s /etc/munge/munge.key ]; then
  $SUDO mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null || \
    $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
$SUDO mkdir -p /run/munge /var/log/munge /var/lib/munge
$SUDO chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
$SUDO chmod 0400 /etc/munge/munge.key
$SUDO chmod 0755 /run/munge
if ! pgrep -x munged >/dev/null; then
  $SUDO runuser -u munge -- /usr/sbin/munged
fi

NODE="$(hostname -s)"
CPUS="$(nproc)"
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
CONF=/etc/slurm/slurm.conf
$SUDO mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
NEW_CONF="$(cat <<EOF
# Written by nova-infant scripts/slurm-test-cluster.sh: one node, no cgroups, for tests.
ClusterName=novainfant
SlurmctldHost=${NODE}
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=10
Waittime=0
NodeName=${NODE} CPUs=${CPUS} RealMemory=${MEM_MB} State=UNKNOWN
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
EOF
)"
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$NEW_CONF" ]; then
  echo "$NEW_CONF" | $SUDO tee "$CONF" >/dev/null
  # a changed configuration needs the daemons restarted
  $SUDO pkill -x slurmctld 2>/dev/null || true
  $SUDO pkill -x slurmd 2>/dev/null || true
  sleep 1
fi
pgrep -x slurmctld >/dev/null || $SUDO slurmctld
pgrep -x slurmd >/dev/null || $SUDO slurmd

for _ in $(seq 1 30); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "slurm-test-cluster: node ${NODE} up ($(sinfo -h -o '%P %D %T %c CPUs %m MB'))"
    exit 0
  fi
  $SUDO scontrol update nodename="${NODE}" state=resume 2>/dev/null || true
  sleep 1
done
echo "slurm-test-cluster: Slurm did not come up; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
sinfo >&2 || true
exit 0
