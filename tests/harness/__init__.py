"""Reusable test harness: free ports, IOC subprocesses, real CA/PVA clients.

See ``ioc_process.py`` (IocProcess), ``clients.py`` (PyepicsClient,
caproto_client, pva_client, poll_until, MonitorQueue), ``ports.py`` and
``require.py`` (require_or_skip for Docker/netns tests).
"""

from .cli import CliResult, isolated_env, podioc
from .clients import (
    MonitorQueue,
    PyepicsClient,
    WorkerError,
    ca_pv,
    caproto_client,
    patched_environ,
    poll_until,
    pva_client,
)
from .ioc_process import LIVE, IocProcess, IocStartError, base_env, unique_prefix
from .ports import free_port, free_ports, port_is_free, tcp_listening, wait_ports_free
from .receiver import TcpReceiver
from .require import STRICT_KINDS, require_or_skip, required

__all__ = [
    "LIVE",
    "STRICT_KINDS",
    "CliResult",
    "IocProcess",
    "IocStartError",
    "MonitorQueue",
    "PyepicsClient",
    "TcpReceiver",
    "WorkerError",
    "base_env",
    "ca_pv",
    "caproto_client",
    "free_port",
    "free_ports",
    "isolated_env",
    "patched_environ",
    "podioc",
    "poll_until",
    "port_is_free",
    "pva_client",
    "require_or_skip",
    "required",
    "tcp_listening",
    "unique_prefix",
    "wait_ports_free",
]
