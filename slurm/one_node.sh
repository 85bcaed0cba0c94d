#!/bin/bash
# A one-node SLURM on this machine, to try slurm/*.sbatch before a real cluster
# (docs/CLUSTER.md); the SLURM tests (tests/slurm/) start theirs with it too.
#   sudo apt-get install -y slurm-wlm munge        # Debian/Ubuntu: SLURM 22.05+ and MUNGE
#   sudo slurm/one_node.sh start /tmp/lp_slurm     # prints the line to export
#   export SLURM_CONF=/tmp/lp_slurm/slurm.conf
#   sbatch --gpus-per-node=0 --ntasks-per-node=2 --cpus-per-task=1 slurm/fit.sbatch \
#       --trainer.accelerator=cpu ...
#   sudo slurm/one_node.sh stop /tmp/lp_slurm      # cancels its jobs, stops the daemons
# Runs as root (slurmd starts the jobs as their user): munged with its own key and socket,
# slurmctld and slurmd, all state, logs and sockets under DIR, every port on 127.0.0.1
# (CommunicationParameters=NoInAddrAny). The node has this machine's CPUs (nproc) and
# memory; no cgroups (ProctrackType=proctrack/linuxproc, TaskPlugin=task/none), so nothing
# confines a job to its CPUs: fine for trying scripts, not for sharing the machine.
# Ports: SLURMCTLD_PORT and SLURMD_PORT (default 6817, 6818), free ones for a second cluster.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
action=$1
dir=$(realpath -m "$2")
conf=$dir/slurm.conf

stop_pid() {  # stop_pid FILE: TERM the process in FILE, KILL it after 20 s
    local pid
    [[ -s $1 ]] || return 0
    pid=$(cat "$1")
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
}

case $action in
start)
    [[ $(id -u) -eq 0 ]] || { echo "$0: run as root (slurmd starts jobs as their user)" >&2; exit 1; }
    for tool in munged slurmctld slurmd sinfo; do
        command -v "$tool" >/dev/null || {
            echo "$0: $tool not found: apt-get install -y slurm-wlm munge" >&2; exit 1; }
    done
    mkdir -p "$dir"/{munge,state,spool}
    chmod 755 "$dir"/munge  # the socket: every user submits; the key stays root-only (0400)
    [[ -s $dir/munge/munge.key ]] || {
        head -c 1024 /dev/urandom >"$dir"/munge/munge.key; chmod 400 "$dir"/munge/munge.key; }
    munged --force --socket="$dir"/munge/munge.socket --key-file="$dir"/munge/munge.key \
        --pid-file="$dir"/munge/munged.pid --log-file="$dir"/munge/munged.log \
        --seed-file="$dir"/munge/munged.seed
    host=$(hostname -s)
    memory_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
    cat >"$conf" <<EOF
# written by slurm/one_node.sh
ClusterName=lp_one_node
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
SlurmctldTimeout=10
SlurmdTimeout=10
MessageTimeout=10
InactiveLimit=0
KillWait=30
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF=$conf
    slurmctld
    slurmd
    for _ in $(seq 120); do
        [[ $(sinfo -h -o %t 2>/dev/null) == idle ]] && { echo "export SLURM_CONF=$conf"; exit 0; }
        sleep 0.5
    done
    echo "$0: the node did not come up within 60 s; see $dir/slurmctld.log, $dir/slurmd.log" >&2
    exit 1
    ;;
stop)
    [[ -f $conf ]] || { echo "$0: no $conf" >&2; exit 1; }
    export SLURM_CONF=$conf
    if [[ -s $dir/slurmctld.pid ]] && kill -0 "$(cat "$dir"/slurmctld.pid)" 2>/dev/null; then
        scancel --quiet $(squeue -h -r -o %i) 2>/dev/null || true
        for _ in $(seq 120); do [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break; sleep 0.5; done
    fi
    stop_pid "$dir"/slurmd.pid
    stop_pid "$dir"/slurmctld.pid
    stop_pid "$dir"/munge/munged.pid
    ;;
*) usage ;;
esac
