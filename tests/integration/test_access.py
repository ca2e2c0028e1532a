"""Access rules (EPICS ACF) enforced the same on CA and PVA, by the client's real address.

Clients appear at other loopback addresses through relays (see
``fuzz/relay.py``): real caproto and p4p clients reach the IOC from 127.0.0.2
or 127.0.0.3. A raw CA client (``fuzz/rawca.py``) claims host and user names.

Matrix: {read-only PV, write-allowed group, write-denied group, host allowed by
IP, host denied, client claiming an allowed host name from a denied address}
x {CA, PVA}; every refused put leaves the value unchanged.
"""

from __future__ import annotations

import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import caproto as ca
import pytest
from p4p.client.thread import Context as PVAContext
from p4p.client.thread import RemoteError

from fuzz.rawca import RawCA
from fuzz.relay import CARelay, PVARelay
from harness import IocProcess, IocStartError, ca_pv, caproto_client, poll_until, pva_client

TARGET = Path(__file__).resolve().parents[1] / "fuzz" / "target_ioc.py"
LAB = "127.0.0.2"      # allowed by address (HAG lab)
OUTSIDE = "127.0.0.3"  # in no HAG
HOSTNAME = socket.gethostname()

RULES = f"""
# podioc access matrix
UAG(operators) {{ alice }}
HAG(lab) {{ {LAB} }}
HAG(named) {{ localhost, "{HOSTNAME}" }}   # names clients claim; match by address only
ASG(DEFAULT) {{ RULE(1, READ) }}
ASG(WRITERS) {{ RULE(1, WRITE) }}
ASG(READERS) {{ RULE(1, READ) }}
ASG(BYHOST) {{
    RULE(1, READ)
    RULE(1, WRITE) {{ HAG(lab) }}
}}
ASG(HIDDEN) {{ RULE(1, WRITE) {{ HAG(lab) }} }}
ASG(CLAIMED) {{
    RULE(1, READ)
    RULE(1, WRITE) {{ HAG(named) }}
}}
ASG(OPS) {{
    RULE(1, READ)
    RULE(1, WRITE, TRAPWRITE) {{ UAG(operators) }}
}}
"""

CONFIG = f"""
ioc: '{TARGET}:Target'
prefix: 'ACC:'
access:
  file: rules.acf
  groups:
    WRITERS: [ALLOWED, RO]
    READERS: [DENIED]
    BYHOST: [BYHOST]
    HIDDEN: [HIDDEN]
    CLAIMED: [CLAIMED]
    OPS: [ops]
"""

READ = int(ca.AccessRights.READ)
READ_WRITE = int(ca.AccessRights.READ | ca.AccessRights.WRITE)


def write_instance(directory: Path, rules: str = RULES) -> Path:
    (directory / "rules.acf").write_text(rules)
    path = directory / "access.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def ioc(module_ioc_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> IocProcess:
    directory = tmp_path_factory.mktemp("access")
    return module_ioc_factory(write_instance(directory), name="access")  # type: ignore[no-any-return]


# -- clients at an address -----------------------------------------------------
class Client:
    """get/put/rights for one protocol, as seen from one address."""

    def __init__(self, protocol: str, ioc: IocProcess, source: str) -> None:
        self.protocol, self.ioc, self.source = protocol, ioc, source
        self._stack: list[Any] = []
        self.relay: Any = None
        if source != "127.0.0.1":
            cls = CARelay if protocol == "ca" else PVARelay
            port = ioc.ca_port if protocol == "ca" else ioc.pva_port
            self.relay = cls(port, source)
        if protocol == "ca":
            env = self.relay.client_env() if self.relay else ioc.client_env()
            self._cm = caproto_client(env)
            self.ctx = self._cm.__enter__()
        else:
            conf = self.relay.conf() if self.relay else ioc.pva_conf()
            self.ctx = PVAContext("pva", conf=conf, useenv=False)

    def rights(self, suffix: str) -> int:
        assert self.protocol == "ca"
        pv = ca_pv(self.ctx, self.ioc.pv(suffix))
        poll_until(lambda: pv.access_rights is not None, timeout=5)
        return int(pv.access_rights)

    def get(self, suffix: str, timeout: float = 5.0) -> Any:
        if self.protocol == "ca":
            reply = ca_pv(self.ctx, self.ioc.pv(suffix)).read(timeout=timeout)
            assert reply.status.success, reply.status
            return reply.data[0]
        return self.ctx.get(self.ioc.pv(suffix), timeout=timeout)

    def put(self, suffix: str, value: float) -> bool:
        """True if the put was accepted; False if refused."""
        if self.protocol == "ca":
            reply = ca_pv(self.ctx, self.ioc.pv(suffix)).write([value], wait=True, timeout=5)
            return bool(reply.status.success)
        try:
            self.ctx.put(self.ioc.pv(suffix), value, timeout=5)
        except RemoteError:
            return False
        return True

    def close(self) -> None:
        if self.ctx is None:
            return
        if self.protocol == "ca":
            self._cm.__exit__(None, None, None)
        else:
            self.ctx.close()
        if self.relay is not None:
            self.relay.close()
        self.ctx = None


@pytest.fixture(params=["ca", "pva"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def at(ioc: IocProcess, protocol: str) -> Iterator[Any]:
    """``at(address)`` -> a Client of this test's protocol at that address."""
    clients: list[Client] = []

    def make(source: str = "127.0.0.1") -> Client:
        clients.append(Client(protocol, ioc, source))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def direct(ioc: IocProcess, suffix: str) -> Any:
    """The value read by a client the rules let read everything (from 127.0.0.2)."""
    with RawCA(ioc.ca_port, source_ip=LAB) as raw:
        chan, _ = raw.connect(ioc.pv(suffix))
        reply = raw.read(chan)
        assert reply.status.name == "ECA_NORMAL", reply
        return reply.data[0]


# -- the matrix ------------------------------------------------------------------
def test_read_only_pv_refuses_puts_even_in_a_write_group(ioc: IocProcess, at: Any,
                                                          protocol: str) -> None:
    client = at()
    if protocol == "ca":
        assert client.rights("RO") == READ  # the spec caps the rules' WRITE
    assert client.get("RO") == 1.0
    assert client.put("RO", 77.0) is False
    assert direct(ioc, "RO") == 1.0


def test_write_allowed_group(ioc: IocProcess, at: Any, protocol: str) -> None:
    client = at()
    value = 11.5 if protocol == "ca" else 12.5
    if protocol == "ca":
        assert client.rights("ALLOWED") == READ_WRITE
    assert client.put("ALLOWED", value) is True
    assert client.get("ALLOWED") == value
    assert direct(ioc, "ALLOWED") == value


def test_write_denied_group(ioc: IocProcess, at: Any, protocol: str) -> None:
    client = at(LAB)  # even from the lab: the group grants READ only
    if protocol == "ca":
        assert client.rights("DENIED") == READ
    before = direct(ioc, "DENIED")
    assert client.put("DENIED", 99.0) is False
    assert client.get("DENIED") == before
    assert direct(ioc, "DENIED") == before


def test_metadata_fields_follow_the_rules_of_their_pv(ioc: IocProcess, at: Any,
                                                      protocol: str) -> None:
    """``.HOPR`` is writable with the PV's WRITE right, also on a read-only PV."""
    client = at()
    high = 5000.0 if protocol == "ca" else 6000.0
    assert client.put("DENIED.HOPR", high) is False
    assert client.get("DENIED.HOPR") != high
    assert client.put("ALLOWED.HOPR", high) is True
    assert client.get("ALLOWED.HOPR") == high
    assert client.put("RO.HOPR", high) is True
    assert client.get("RO.HOPR") == high


def test_host_allowed_by_ip(ioc: IocProcess, at: Any, protocol: str) -> None:
    client = at(LAB)
    value = 21.0 if protocol == "ca" else 22.0
    if protocol == "ca":
        assert client.rights("BYHOST") == READ_WRITE
        assert client.rights("HIDDEN") == READ_WRITE
    assert client.put("BYHOST", value) is True
    assert direct(ioc, "BYHOST") == value
    assert client.put("HIDDEN", value) is True
    assert client.get("HIDDEN") == value


def test_host_denied(ioc: IocProcess, at: Any, protocol: str) -> None:
    before = direct(ioc, "BYHOST")
    hidden = direct(ioc, "HIDDEN")
    for source in ("127.0.0.1", OUTSIDE):
        client = at(source)
        if protocol == "ca":
            assert client.rights("BYHOST") == READ
            assert client.rights("HIDDEN") == 0
            reply = ca_pv(client.ctx, ioc.pv("HIDDEN")).read(timeout=5)
            assert reply.status.name == "ECA_NORDACCESS"
        else:
            with pytest.raises(TimeoutError):  # the channel is refused: no read, no put
                client.get("HIDDEN", timeout=2.0)
            with pytest.raises(TimeoutError):
                client.ctx.put(ioc.pv("HIDDEN"), 66.0, timeout=2.0)
        assert client.get("BYHOST") == before
        assert client.put("BYHOST", 66.0) is False
        if protocol == "ca":
            assert client.put("HIDDEN", 66.0) is False
        client.close()  # one caproto client at a time (it patches os.environ)
    assert direct(ioc, "BYHOST") == before
    assert direct(ioc, "HIDDEN") == hidden


def test_claimed_host_name_from_a_denied_address(ioc: IocProcess, at: Any,
                                                  protocol: str) -> None:
    before = direct(ioc, "CLAIMED")
    if protocol == "ca":
        # A CA client names its host itself (CA_PROTO_HOST_NAME): claim an allowed one.
        for claim in ("localhost", HOSTNAME):
            with RawCA(ioc.ca_port, source_ip=OUTSIDE, host=claim, user="alice") as raw:
                chan, rights = raw.connect(ioc.pv("CLAIMED"))
                assert rights == READ
                assert raw.write(chan, [55.0]).status.name == "ECA_NOWTACCESS"
        # the same rule from the address it names: allowed, whatever the claim
        with RawCA(ioc.ca_port, host="nowhere.invalid") as raw:
            chan, rights = raw.connect(ioc.pv("CLAIMED"))
            assert rights == READ_WRITE
            assert raw.write(chan, [before]).status.name == "ECA_NORMAL"
    else:
        # pvxs's "ca" authentication claims this machine's host name, which is in HAG(named).
        client = at(OUTSIDE)
        assert client.put("CLAIMED", 55.0) is False
        client.close()
        assert at().put("CLAIMED", before) is True
    assert direct(ioc, "CLAIMED") == before


def test_user_groups(ioc: IocProcess, at: Any, protocol: str) -> None:
    before = direct(ioc, "OPS")
    if protocol == "ca":
        with RawCA(ioc.ca_port, user="bob") as raw:
            chan, rights = raw.connect(ioc.pv("OPS"))
            assert rights == READ
            assert raw.write(chan, [3.0]).status.name == "ECA_NOWTACCESS"
        with RawCA(ioc.ca_port, user="alice") as raw:
            chan, rights = raw.connect(ioc.pv("OPS"))
            assert rights == READ_WRITE
            assert raw.write(chan, [before + 1]).status.name == "ECA_NORMAL"
        assert direct(ioc, "OPS") == before + 1
        ioc.wait_for_log(r"TRAPWRITE: CA put to \S+OPS by alice at 127\.0\.0\.1")
    else:
        assert at().put("OPS", 3.0) is False  # p4p's account is this process's user
        assert direct(ioc, "OPS") == before


def test_raw_clients_ignoring_their_rights_are_refused(ioc: IocProcess) -> None:
    """A client may send reads, subscriptions and writes its rights forbid."""
    with RawCA(ioc.ca_port) as raw:
        chan, rights = raw.connect(ioc.pv("HIDDEN"))
        assert rights == 0
        assert raw.read(chan).status.name == "ECA_NORDACCESS"
        reply = raw.subscribe(chan)
        assert isinstance(reply, ca.ErrorResponse)
        assert reply.status.name == "ECA_NORDACCESS"
        assert raw.write(chan, [1.0]).status.name == "ECA_NOWTACCESS"


# -- reload and errors ---------------------------------------------------------------
def test_sighup_reloads_rules_without_dropping_clients(ioc_factory: Any, tmp_path: Path) -> None:
    config = write_instance(tmp_path)
    ioc = ioc_factory(config, name="reload")
    with RawCA(ioc.ca_port) as raw, pva_client(ioc) as pva:
        chan, rights = raw.connect(ioc.pv("DENIED"))
        assert rights == READ
        with pytest.raises(RemoteError):
            pva.put(ioc.pv("DENIED"), 1.0)

        (tmp_path / "rules.acf").write_text(RULES.replace(
            "ASG(READERS) { RULE(1, READ) }", "ASG(READERS) { RULE(1, WRITE) }"))
        ioc.send_signal(signal.SIGHUP)
        update = raw.wait_for(lambda c: isinstance(c, ca.AccessRightsResponse)
                              and c.cid == chan.cid, timeout=10)
        assert int(update.access_rights) == READ_WRITE  # re-sent on the open channel
        assert raw.write(chan, [4.0]).status.name == "ECA_NORMAL"
        pva.put(ioc.pv("DENIED"), 5.0)
        ioc.wait_for_log(r"access rules reloaded from \S+rules\.acf")

        (tmp_path / "rules.acf").write_text(RULES + "\nASG(BROKEN) { RULE(1, CALC) }\n")
        ioc.send_signal(signal.SIGHUP)
        match = ioc.wait_for_log(r"access rules NOT reloaded, keeping the previous rules: "
                                 r"(\S+rules\.acf: line \d+: .*)")
        assert "must be NONE, READ or WRITE" in match.group(1)
        assert raw.write(chan, [6.0]).status.name == "ECA_NORMAL"  # old rules kept
        assert raw.read(chan).data[0] == 6.0
    assert ioc.alive()


@pytest.mark.parametrize(("rules", "expected"), [
    ("ASG(DEFAULT) {\n  RULE(1, READ)\n  RULE(1, WRITE) { CALC(\"A>1\") }\n}\n",
     r"rules\.acf: line 3: CALC is not supported"),
    ("UAG(ops) { alice }\nASG(DEFAULT) {\n  RULE(1, WRITE) { UAG(opz) }\n}\n",
     r"rules\.acf: line 3: UAG 'opz' is not defined"),
    ("ASG(DEFAULT) {\n  RULE(2, READ)\n}\n", r"rules\.acf: line 2: level '2' must be 0 or 1"),
])
def test_bad_rules_fail_startup_naming_file_and_line(tmp_path: Path, rules: str,
                                                      expected: str) -> None:
    config = write_instance(tmp_path, rules)
    ioc = IocProcess(config, log_dir=tmp_path, ready_timeout=20)
    with pytest.raises(IocStartError) as info:
        ioc.start(attempts=1)
    assert ioc.stop() not in (0, None)
    assert re.search(expected, str(info.value)), str(info.value)
