"""examples/kamailio (docs/scaling.md), run: kamailio's dispatcher in front of two `largesc answer` instances.

The test runs the shipped dispatcher.cfg itself. Its one substitution, documented in
the file: ``#!define`` lines for the port and the list path (and ``mpath``) go in
front of the file's text; the shipped dispatcher.list gets the instances' ports in
place of 5071 and 5072.

What it checks: both instances answer kamailio's OPTIONS health checks with 200;
calls are spread over both (round robin); one instance is killed (SIGKILL) while a
call runs on it; new calls all succeed on the other one (the two placed at the kill within
FAILOVER_S, one of them after a failover); the call on the dead instance is ended by kamailio's BYE
within DEAD_CALL_END_S.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from tests.sip_agent.conftest import HOST, REPO, AgentRun, free_port, only_call
from tests.sip_agent.kamailio import kamailio_with, module_dir

pytestmark = [pytest.mark.sip, pytest.mark.timeout(90)]

EXAMPLES = REPO / "examples" / "kamailio"
# kill -> first new call answered by the survivor: a call sent to the dead instance waits for the
# no-reply timer (NOREPLY_MS, 2 s) and fails over; after the health check marks it down (1 s
# interval + 2 s timeout), calls go straight to the survivor
FAILOVER_S = 5.0
# kill -> the call on the dead instance ended: health check (<= 1 s + 2 s), then a 1 s dialog
# timeout, then kamailio's BYE to the caller
DEAD_CALL_END_S = 8.0


def shipped_config(port: int, ds_list: Path) -> str:
    """dispatcher.cfg as shipped, with the test's defines in front (after the #!KAMAILIO line)."""
    first, rest = (EXAMPLES / "dispatcher.cfg").read_text().split("\n", 1)
    assert first == "#!KAMAILIO"
    defines = f'#!define SIP_ADDR {HOST}\n#!define SIP_PORT {port}\n#!define DS_LIST "{ds_list}"\nmpath="{module_dir()}"\n'
    return f"{first}\n{defines}{rest}"


def shipped_list(a: int, b: int) -> str:
    text = (EXAMPLES / "dispatcher.list").read_text()
    assert f"sip:{HOST}:5071" in text and f"sip:{HOST}:5072" in text
    return text.replace(f"sip:{HOST}:5071", f"sip:{HOST}:{a}").replace(f"sip:{HOST}:5072", f"sip:{HOST}:{b}")


TX_200_INVITE = re.compile(r"^(\d\d):(\d\d):(\d\d\.\d+) .*TX \d+ bytes Response msg 200/INVITE/cseq=(\d+)", re.M)
RX_BYE = re.compile(r"^(\d\d):(\d\d):(\d\d\.\d+) .*RX \d+ bytes Request msg BYE/cseq=(\d+)", re.M)


def sip_log_times(log: Path, pattern: re.Pattern[str]) -> list[float]:
    """Wall-clock times (time.time() scale) of the first line per CSeq matching ``pattern`` in a pjsip log.

    pjsip stamps its lines with the local time of day (HH:MM:SS.mmm); the date is today's.
    """
    midnight = time.mktime(time.localtime()[:3] + (0, 0, 0, 0, 0, -1))
    seen: dict[str, float] = {}
    for h, m, sec, cseq in pattern.findall(log.read_text(errors="replace")):
        seen.setdefault(cseq, midnight + int(h) * 3600 + int(m) * 60 + float(sec))
    return sorted(seen.values())


def calls_ended(run: AgentRun) -> int:
    return run.text().count("ended after")


def calls_started(run: AgentRun) -> int:
    return run.text().count("incoming call from")


def wait_until(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def test_dispatcher_spreads_calls_and_fails_over(agent, tmp_path: Path) -> None:
    kport, ports = free_port(), (free_port(), free_port())
    ds_list = tmp_path / "dispatcher.list"
    ds_list.write_text(shipped_list(*ports))
    logs = [tmp_path / f"instance{i}.sip.log" for i in range(2)]
    instances = [agent(f"instance{i}", "answer", "--port", str(p), "--engine", "raw", "--timeout", "100",
                       "--sip-log", str(log)) for i, (p, log) in enumerate(zip(ports, logs))]
    for run in instances:
        run.wait_for("waiting for calls")
    with kamailio_with(tmp_path / "kamailio", shipped_config(kport, ds_list), kport):
        kamailio_log = tmp_path / "kamailio" / "kamailio.out"
        # health checks: kamailio's OPTIONS reach both instances and pjsua2 answers them 200
        for log in logs:
            wait_until(lambda: log.exists() and "Response msg 200/OPTIONS" in log.read_text(errors="replace"),
                       5, f"200 to kamailio's OPTIONS in {log.name}")
        assert "from UDP 127.0.0.1:%d" % kport in logs[0].read_text(errors="replace")

        # spread: four calls one after another, round robin -> two per instance
        for n in range(4):
            rc, report = agent(f"spread{n}", "call", f"sip:bob@{HOST}:{kport}", "--engine", "raw",
                               "--duration", "1").finish()
            assert rc == 0 and only_call(report)["connected"], report
        wait_until(lambda: sum(calls_ended(r) for r in instances) == 4, 5, "both instances saw their calls end")
        spread = [calls_ended(r) for r in instances]
        print(f"calls per instance: {spread}")
        assert spread == [2, 2], (spread, kamailio_log.read_text()[-3000:])

        # a long call; whichever instance takes it is killed while it runs
        long_log = tmp_path / "long.sip.log"
        long_call = agent("long", "call", f"sip:bob@{HOST}:{kport}", "--engine", "raw", "--duration", "40",
                          "--sip-log", str(long_log))
        long_call.wait_for("call state: CONFIRMED", 10)
        victim_index = next(i for i, r in enumerate(instances) if calls_started(r) == 3)
        victim, survivor = instances[victim_index], instances[1 - victim_index]
        killed_at = time.time()
        victim.proc.kill()
        victim.proc.wait()

        # new calls, two at once right after the kill: round robin sends one to the dead instance
        # (no health check can have marked it down yet), which fails over to the survivor
        # (failure_route: 408 -> ds_next_dst); then two more, which go straight to the survivor
        pair = [agent(f"after{n}", "call", f"sip:bob@{HOST}:{kport}", "--engine", "raw", "--duration", "1")
                for n in range(2)]
        for run in pair:
            rc, report = run.finish()
            assert rc == 0 and only_call(report)["connected"], report
        for n in range(2, 4):
            rc, report = agent(f"after{n}", "call", f"sip:bob@{HOST}:{kport}", "--engine", "raw",
                               "--duration", "1").finish()
            assert rc == 0 and only_call(report)["connected"], report
        rc, long_report = long_call.finish()
        answered_after = [t - killed_at for t in sip_log_times(logs[1 - victim_index], TX_200_INVITE) if t > killed_at]
        byes = [t - killed_at for t in sip_log_times(long_log, RX_BYE)]
        assert len(answered_after) == 4 and len(byes) == 1, (answered_after, byes)
        dead_call_end = byes[0]
        print(f"failover: the survivor answered the new calls {[round(t, 2) for t in answered_after]} s after the kill; call on the dead instance ended "
              f"{dead_call_end:.2f} s after the kill: {only_call(long_report)['message']}")
        assert max(answered_after[:2]) <= FAILOVER_S, answered_after
        assert "the peer hung up" in only_call(long_report)["message"], long_report
        assert dead_call_end <= DEAD_CALL_END_S, (dead_call_end, kamailio_log.read_text()[-3000:])
        log_text = kamailio_log.read_text()
        victim_uri = rf"sip:{HOST}:{ports[victim_index]}\b"
        assert re.search(rf"failover \S+ to sip:{HOST}:{ports[1 - victim_index]} after 408", log_text), log_text[-3000:]
        assert re.search(rf"instance down {victim_uri}", log_text), log_text[-3000:]
        assert re.search(rf"instance up {victim_uri}", log_text) is None

    survivor.proc.send_signal(signal.SIGTERM)
    rc, report = survivor.finish()
    assert rc == 0, report
    assert len(report["calls"]) == 2 + 4 and all(c["connected"] for c in report["calls"]), report
