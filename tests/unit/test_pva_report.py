"""pvxs's connection report made without the GIL (podioc.protocols.pva.report).

``Server.tostr`` deadlocks against a client creating channels (the report
waits for pvxs's loop while holding the GIL; the loop waits for the GIL to call
``makeChannel``). The reporter gives the same text and cannot deadlock: here one
thread reports without pause while clients create channels through a Python
``DynamicProvider``, in a child process that must finish within its deadline.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from podioc.protocols.pva import report

#: The child: reports in a loop while client contexts create 20 channels each (4 s, at
#: most 400 contexts; with ``Server.tostr`` it deadlocks within about a second here).
CHILD = textwrap.dedent("""
    import sys, threading
    from p4p.client.thread import Context
    from p4p.nt import NTScalar
    from p4p.server import DynamicProvider, Server
    from p4p.server.thread import SharedPV
    from podioc.protocols.pva import report

    pv = SharedPV(nt=NTScalar("d"), initial=1.0)
    class Handler:
        def testChannel(self, name): return True
        def makeChannel(self, name, peer): return pv
    handler = Handler()
    provider = DynamicProvider("d", handler)
    server = Server(providers=[provider], isolate=True)
    reporter = report.load(server)
    assert reporter is not None
    done = threading.Event()
    reports = [0]
    def spin():
        while not done.is_set():
            reporter.report(3)
            reports[0] += 1
    threading.Thread(target=spin, daemon=True).start()
    conf = server.conf()
    import time
    deadline = time.monotonic() + 4
    for n in range(400):
        if time.monotonic() > deadline:
            break
        ctx = Context("pva", conf=conf, useenv=False)
        ctx.get([f"A{n}:{i}" for i in range(20)], timeout=5)
        if n == 0:
            text = reporter.report(3)
            assert "Peer" in text, text
        ctx.close()
    done.set()
    print("reports", reports[0], flush=True)
""")


def test_the_report_is_pvxs_own_text() -> None:
    from p4p.client.thread import Context
    from p4p.nt import NTScalar
    from p4p.server import Server
    from p4p.server.thread import SharedPV

    pv = SharedPV(nt=NTScalar("d"), initial=2.0)
    server = Server(providers=[{"R:X": pv}], isolate=True)
    try:
        assert report.problem(server) == ""
        reporter = report.load(server)
        assert reporter is not None
        ctx = Context("pva", conf=server.conf(), useenv=False)
        try:
            assert float(ctx.get("R:X", timeout=5)) == 2.0
            text = reporter.report(3)
            assert "Peer" in text and "R:X TX=" in text
            assert text == server.tostr(3)  # safe here: no channel is being created
        finally:
            ctx.close()
    finally:
        server.stop()


def test_reporting_while_clients_create_channels_does_not_deadlock() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          timeout=40, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > 0


def test_an_unexpected_p4p_is_refused_before_any_call() -> None:
    class Wrapper:
        _S = object()

    assert "layout" in report.problem(Wrapper())
    assert report.load(Wrapper()) is None
