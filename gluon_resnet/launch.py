"""Start MXNet's parameter-server cluster and the training workers: ``python -m gluon_resnet.launch --help``.

One scheduler, M servers and N workers, told their parts by the ``DMLC_*`` environment variables
that MXNet's kvstore reads. On one machine everything binds to 127.0.0.1. With ``--hosts`` the
launcher prints each host's command (or runs it over ssh with ``--ssh``), as MXNet's launcher does.
It watches every process: when one fails, or on Ctrl-C, it stops all the others and says which.
"""
import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from .cli import ArgumentParser, friendly, number
from .errors import UserError
from .runtime import usable_cpus

LOOPBACK = "127.0.0.1"
SERVICE = ("-c", "import gluon_resnet")  # importing mxnet with DMLC_ROLE=server/scheduler serves, then exits
STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL


@dataclass
class Task:
    """One process of the cluster: its role, number within the role, host, command and DMLC_* settings."""
    role: str
    index: int
    host: str
    argv: list
    env: dict
    popen: subprocess.Popen = field(default=None, repr=False)
    relay: threading.Thread = field(default=None, repr=False)

    @property
    def name(self):
        return "scheduler" if self.role == "scheduler" else f"{self.role} {self.index}"


def free_port(host=LOOPBACK):
    """A TCP port nobody listens on right now, for the scheduler."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def read_hosts(path):
    """Host names from a file, one per line; blank lines and ``#`` comments are skipped."""
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as err:
        raise UserError(f"cannot read --hosts {path}: {err.strerror}") from None
    hosts = [line.split("#")[0].strip() for line in lines]
    hosts = [h for h in hosts if h]
    if not hosts:
        raise UserError(f"--hosts {path} names no host: write one host name or address per line")
    return hosts


def with_dist_kvstore(train_args):
    """The train flags, with ``--kvstore dist_sync`` added when none is given."""
    for i, arg in enumerate(train_args):
        value = arg.split("=", 1)[1] if arg.startswith("--kvstore=") else (
            train_args[i + 1] if arg == "--kvstore" and i + 1 < len(train_args) else None)
        if value is not None:
            if not value.startswith("dist"):
                raise UserError(f"workers started by the launcher need --kvstore dist_sync or "
                                f"dist_device_sync, not {value}")
            return list(train_args)
    return list(train_args) + ["--kvstore", "dist_sync"]


def plan(num_workers, num_servers, hosts, port, train_args, threads=None, module="gluon_resnet.train"):
    """The cluster's tasks: the scheduler on the first host, servers and workers spread round-robin.

    Each worker gets ``threads`` OpenMP threads (default: this machine's CPUs shared among the
    workers of a host), so workers that share a machine do not fight over its cores.
    """
    common = {"DMLC_PS_ROOT_URI": hosts[0], "DMLC_PS_ROOT_PORT": str(port),
              "DMLC_NUM_SERVER": str(num_servers), "DMLC_NUM_WORKER": str(num_workers)}
    worker_argv = [sys.executable, "-m", module, *with_dist_kvstore(train_args)]
    tasks = [Task("scheduler", 0, hosts[0], [sys.executable, *SERVICE], {})]
    tasks += [Task("server", i, hosts[i % len(hosts)], [sys.executable, *SERVICE], {})
              for i in range(num_servers)]
    tasks += [Task("worker", i, hosts[i % len(hosts)], worker_argv, {}) for i in range(num_workers)]
    workers_on = {h: sum(t.host == h for t in tasks if t.role == "worker") for h in hosts}
    for task in tasks:
        task.env = dict(common, DMLC_ROLE=task.role, DMLC_NODE_HOST=task.host, PYTHONUNBUFFERED="1")
        if task.role != "worker":
            task.env["OMP_NUM_THREADS"] = "1"  # servers only add gradients up
        else:
            task.env["OMP_NUM_THREADS"] = str(threads or max(1, usable_cpus() // workers_on[task.host]))
    return tasks


def shell_line(task, cwd=None):
    """The command that starts ``task`` on its host, as one shell line."""
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(task.env.items()))
    cwd = cwd or os.getcwd()
    return f"cd {shlex.quote(cwd)} && env {env} {shlex.join(task.argv)}"


# ---------------------------------------------------------------------------- running and watching

def _die_with_parent():
    """In the child: own process group (so it can be stopped whole), and SIGTERM if the launcher dies."""
    os.setsid()
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start(task, ssh=False, out=None, lock=None):
    """Start ``task`` (locally, or over ssh) and relay its output line by line."""
    if ssh:  # -tt: a terminal on the far side, so the remote process dies when ssh is stopped
        argv = ["ssh", "-tt", "-o", "BatchMode=yes", task.host, shell_line(task)]
        env = dict(os.environ)
    else:
        argv, env = task.argv, dict(os.environ, **task.env)
    task.popen = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, errors="replace",
                                  preexec_fn=_die_with_parent)
    prefix = "" if task.role == "worker" else f"[{task.name}] "  # workers tag lines with their rank
    lock, out = lock or threading.Lock(), out or sys.stdout

    def relay():
        for line in task.popen.stdout:
            with lock:
                out.write(prefix + line.rstrip("\r\n") + "\n")
                out.flush()
    task.relay = threading.Thread(target=relay, daemon=True)
    task.relay.start()
    return task


def describe_exit(code):
    """'exited with code 3' or 'was killed by signal SIGKILL'."""
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def stop_all(tasks, grace=STOP_GRACE):
    """SIGTERM every still-running task's process group, then SIGKILL what is left after ``grace``."""
    def signal_groups(sig):
        for task in tasks:
            if task.popen.poll() is not None:
                continue  # reaped: its pid may belong to someone else by now
            try:
                os.killpg(task.popen.pid, sig)  # the whole group: grandchildren too
            except (ProcessLookupError, PermissionError):
                pass
    signal_groups(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for task in tasks:
        try:
            task.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    signal_groups(signal.SIGKILL)
    for task in tasks:
        task.popen.wait()
        task.relay.join(timeout=2)


def first_failure(tasks, services_done_since, linger):
    """The task to blame, if any: a non-zero exit, or a server or scheduler that left ``linger``
    seconds ago while workers still run (servers leave as the workers finish, so briefly is fine)."""
    for task in tasks:
        code = task.popen.poll()
        if code:
            return task, describe_exit(code)
    if services_done_since is not None and time.monotonic() - services_done_since > linger:
        gone = next(t for t in tasks if t.role != "worker" and t.popen.poll() == 0)
        return gone, f"exited {linger:.0f} s before the workers finished"
    return None, None


def supervise(tasks, poll=0.1, linger=30.0):
    """Wait for the workers to finish; on the first failure stop the rest. Returns the exit code."""
    workers = [t for t in tasks if t.role == "worker"]
    services_done_since = None
    while not all(w.popen.poll() == 0 for w in workers):
        failed, what = first_failure(tasks, services_done_since, linger)
        if failed:
            stop_all(tasks)
            print(f"error: {failed.name} (pid {failed.popen.pid}) {what}; stopped the other "
                  f"{len(tasks) - 1} processes", file=sys.stderr)
            code = failed.popen.returncode
            return code if code > 0 else 1
        if services_done_since is None and any(t.popen.poll() == 0 for t in tasks if t.role != "worker"):
            services_done_since = time.monotonic()
        time.sleep(poll)
    deadline = time.monotonic() + linger  # servers and scheduler leave once the workers are done
    while any(t.popen.poll() is None for t in tasks) and time.monotonic() < deadline:
        time.sleep(poll)
    lingering = [t.name for t in tasks if t.popen.poll() is None]
    stop_all(tasks)
    if lingering:
        print(f"note: stopped {', '.join(lingering)}, still running {linger:.0f} s after the "
              "workers finished", file=sys.stderr)
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_cluster(tasks, ssh=False):
    """Start every task, watch them, and stop them all on failure, Ctrl-C or SIGTERM."""
    lock = threading.Lock()
    # Set both explicitly: a launcher started in the background inherits SIGINT ignored.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = []
    try:
        for task in tasks:
            started.append(start(task, ssh=ssh, lock=lock))
            print(f"launch: started {task.name} on {task.host} (pid {task.popen.pid})", file=sys.stderr)
        return supervise(started)
    except KeyboardInterrupt:
        stop_all(started)
        print(f"interrupted: stopped all {len(started)} processes of the cluster", file=sys.stderr)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------------------- command line

def build_parser():
    parser = ArgumentParser(
        prog="python -m gluon_resnet.launch",
        usage="%(prog)s [--workers N] [--servers M] [--hosts FILE [--ssh]] -- [train flags]",
        description="Train on several processes or machines with MXNet's parameter-server kvstore: "
                    "start a scheduler, M servers and N workers, each worker running "
                    "`python -m gluon_resnet.train <train flags> --kvstore dist_sync` on its shard of "
                    "the data. Without --hosts everything runs on this machine over 127.0.0.1. "
                    "--batch-size is per worker: one step sees N x --batch-size images.",
        epilog="example: python -m gluon_resnet.launch --workers 2 --servers 1 -- --subset 2000 --epochs 1")
    parser.add_argument("--workers", type=number(int, "--workers", 1), default=2,
                        help="training processes (default: %(default)s)")
    parser.add_argument("--servers", type=number(int, "--servers", 1), default=1,
                        help="parameter servers that add the workers' gradients up (default: %(default)s)")
    parser.add_argument("--hosts", metavar="FILE",
                        help="one host per line: the scheduler runs on the first, servers and workers "
                             "round-robin; prints each host's command unless --ssh is given")
    parser.add_argument("--ssh", action="store_true",
                        help="with --hosts: start the commands over ssh (same checkout path and Python "
                             "on every host, key-based login) and watch them as local ones")
    parser.add_argument("--threads-per-worker", type=number(int, "--threads-per-worker", 1),
                        default=None, metavar="T",
                        help="OMP_NUM_THREADS of each worker (default: this machine's CPUs divided "
                             "by the workers on a host)")
    parser.add_argument("--port", type=number(int, "--port", 1, 65535), default=None,
                        help="the scheduler's port (default: a free one on this machine)")
    parser.add_argument("train_args", nargs=argparse.REMAINDER,
                        help="flags for python -m gluon_resnet.train, after --")
    return parser


@friendly
def main(argv=None):
    args = build_parser().parse_args(argv)
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    if args.ssh and not args.hosts:
        raise UserError("--ssh needs --hosts FILE: without it everything runs on this machine")
    hosts = read_hosts(args.hosts) if args.hosts else [LOOPBACK]
    port = args.port or free_port()  # free here; with --hosts pass --port if the first host differs
    tasks = plan(args.workers, args.servers, hosts, port, train_args, args.threads_per_worker)
    if args.hosts and not args.ssh:
        print(f"# run each line on its host (scheduler on {hosts[0]}:{port}), or pass --ssh")
        for task in tasks:
            print(f"ssh {task.host} {shlex.quote(shell_line(task))}")
        return 0
    return run_cluster(tasks, ssh=args.ssh)


if __name__ == "__main__":
    sys.exit(main())
