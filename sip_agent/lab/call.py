"""A real SIP call across the impairment lab, measured from both ends and from the wire.

Theory of operation
-------------------
:func:`run_lab_call` builds a :class:`~sip_agent.lab.lab.Lab` (caller and callee
namespaces, netem router; the report names the kernel that impairs), then:

1. optionally sends a dense probe train each impaired way
   (:func:`sip_agent.lab.probe.probe`): many packets in a few seconds give the
   tight statistical check of the loss model that a 12.5 packet/s call cannot;
2. starts the RTP capture on both interfaces (:mod:`sip_agent.lab.capture`);
3. starts the callee (``answer``, records what it hears) and, once it listens,
   the caller (``call``, plays the file), each in its namespace
   (:mod:`sip_agent.lab.agents`);
4. waits for the caller to finish; the callee then ends by itself (one call),
   else it is stopped with SIGTERM (it hangs up and still writes its report);
   if either dies, the other is stopped the same way;
5. waits for packets still in flight (a marker each way, as at a probe's end),
   stops the capture and builds the report
   (:mod:`sip_agent.lab.analysis`), also when the call failed.

Everything runs inside ``with Lab(...)``: on any exception, Ctrl-C or SIGTERM
the lab terminates the agents, removes namespaces and router, and the capture
sockets are closed in ``finally``.
"""

from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from largesc_codec.cli.options import HUB
from largesc_codec.neural.audio_stream import audio_seconds
from sip_agent.lab.agents import AgentProcess, AgentProgram, agent_program, negotiated, pick_engine
from sip_agent.lab.analysis import direction_report, netem_counters, probe_report
from sip_agent.lab.capture import Capture

__all__ = ["LabCallConfig", "check_config", "run_lab_call"]

SIP_PORT = 5060  # the namespaces are private, so a fixed port never collides
_LISTEN_TIMEOUT_S = 300.0  # agent start-up, model loading included (the real LM takes minutes)
_CALLEE_EXTRA_S = 2.0  # the callee's own hang-up comes this long after the caller's
_TEARDOWN_S = 8.0  # BYE retransmissions (the agent gives up after 3 s), report, exit
ENGINES = ("largesc", "raw", "none")  # what `auto` may resolve to; the agents' --engine values


@dataclass(frozen=True)
class LabCallConfig:
    """What ``largesc lab`` was asked to do (see ``largesc lab --help``)."""

    play: Path
    report: Path
    profile: str = "clean"
    backward: str | None = None
    duration_s: float | None = None
    record: Path | None = None
    weights: str = HUB
    plc: str | None = None
    engine: str = "auto"
    probe_count: int = 0
    probe_rate: float = 500.0
    backend: str = "auto"
    answer_timeout_s: float = 30.0
    router: bool = True


def _files(cfg: LabCallConfig) -> dict[str, Path]:
    stem = cfg.report.with_suffix("")
    return {"caller_log": Path(f"{stem}.caller.log"), "callee_log": Path(f"{stem}.callee.log"),
            "caller_json": Path(f"{stem}.caller.json"), "callee_json": Path(f"{stem}.callee.json"),
            "recording": cfg.record or Path(f"{stem}.heard.wav")}


def _agent_args(cfg: LabCallConfig, engine: str) -> list[str]:
    args = ["--engine", engine, "--weights", cfg.weights]  # named: the agents do not read $LARGESC_WEIGHTS
    if cfg.plc is not None:
        args += ["--plc", cfg.plc]
    return args


def _check_weights(weights: str) -> None:
    """The weights load in the agents (cheap: no model is loaded); ValueError naming --weights and the fix."""
    from largesc_codec.neural.model import WeightsError, check_weights

    try:
        check_weights(weights, network=False)  # the agents' namespaces have no route to the hub
    except WeightsError as exc:
        raise ValueError(f"--weights {weights}: {exc} The lab's agents cannot download (private namespaces); "
                         "or use --engine raw (test payloads) or none (standard codecs)") from None


def _agents_plan(cfg: LabCallConfig) -> tuple[AgentProgram, str, list[str]]:
    """Agent program, media engine and shared options; ValueError before any lab is built."""
    program = agent_program()
    engine = pick_engine(cfg.engine)
    if engine not in ENGINES:
        raise ValueError(f"--engine {engine}: no such media engine (use one of {', '.join(ENGINES)})")
    if engine == "largesc" and importlib.util.find_spec("sip_agent.media.largesc") is None:
        raise ValueError("--engine largesc: the codec-backed media engine (sip_agent.media.largesc) "
                         "is not installed; use --engine raw or auto")
    if engine == "largesc":
        _check_weights(cfg.weights)
    return program, engine, _agent_args(cfg, engine)


def check_config(cfg: LabCallConfig) -> float:
    """Everything that can be checked before a lab is built (file, engine, weights); returns FILE's length in s."""
    played_s = audio_seconds(cfg.play, "--play")
    _agents_plan(cfg)
    return played_s


def _run_agents(lab: Any, cfg: LabCallConfig, plan: tuple[AgentProgram, str, list[str]],
                files: dict[str, Path], call_s: float, say: Callable[[str], None],
                ) -> tuple[AgentProcess, AgentProcess | None, str | None]:
    """Callee then caller; returns both (caller None if never started) and the failure, if any."""
    program, engine, common = plan
    say(f"agents: {' '.join(program.prefix[1:])} call/answer, media engine {engine}")
    # The callee hangs up by itself _CALLEE_EXTRA_S after the caller should have: a BYE that
    # netem drops on every retransmission must not leave it in the call (and without a report).
    callee = AgentProcess(lab, "callee", program.argv(
        "answer", "--bind", lab.callee.address, "--port", str(SIP_PORT), "--calls", "1",
        "--timeout", f"{cfg.answer_timeout_s + call_s + _LISTEN_TIMEOUT_S:g}",
        "--duration", f"{call_s + _CALLEE_EXTRA_S:g}", "--record", str(files["recording"]),
        *common), files["callee_log"], files["callee_json"])
    if not callee.wait_for("waiting for calls", _LISTEN_TIMEOUT_S):
        callee.stop()
        return callee, None, f"the callee agent did not start listening:\n{callee.tail()}"
    say(f"callee listening on {lab.callee.address}:{SIP_PORT}")
    duration = [] if cfg.duration_s is None else ["--duration", f"{cfg.duration_s:g}"]
    caller = AgentProcess(lab, "caller", program.argv(
        "call", f"sip:lab@{lab.callee.address}:{SIP_PORT}", "--bind", lab.caller.address,
        "--play", str(cfg.play), "--answer-timeout", f"{cfg.answer_timeout_s:g}", *duration,
        *common), files["caller_log"], files["caller_json"])
    deadline = time.monotonic() + cfg.answer_timeout_s + call_s + _LISTEN_TIMEOUT_S
    connected = False
    # A callee that exits 0 has finished its call (the caller may still be retransmitting
    # its BYE); one that exits otherwise ends the call for both.
    while caller.running and callee.proc.poll() in (None, 0) and time.monotonic() < deadline:
        if not connected and "call state: CONFIRMED" in caller.text():
            connected = True
            say(f"call connected ({negotiated(caller.text()).get('codec')}); playing {cfg.play}")
        time.sleep(0.1)
    failure = None
    if caller.running and callee.proc.poll() in (None, 0):
        failure = "the call ran past its deadline; both agents were stopped"
    elif caller.running:
        failure = f"the callee agent exited with {callee.proc.poll()} during the call:\n{callee.tail()}"
    code = caller.stop()  # SIGTERM if still running: it hangs up and writes its report
    if failure is None and code != 0:
        failure = f"the caller agent exited with {code}:\n{caller.tail()}"
    # One call: after a normal hang-up the callee exits by itself; else it is told to.
    if failure is None:
        callee.wait(_CALLEE_EXTRA_S + _TEARDOWN_S)
    callee_code = callee.stop()
    if failure is None and callee_code != 0:
        failure = f"the callee agent exited with {callee_code}:\n{callee.tail()}"
    return callee, caller, failure


def _media(agent: AgentProcess | None) -> dict[str, Any] | None:
    call = agent.call() if agent is not None else None
    media = call.get("media") if call else None
    return media if isinstance(media, dict) else None


def run_lab_call(cfg: LabCallConfig, say: Callable[[str], None] = print) -> tuple[int, dict[str, Any]]:
    """Make the call (module docstring); write and return the report. Exit code 0: call ok."""
    from sip_agent.lab.lab import Lab
    from sip_agent.lab.probe import probe, wait_drained

    played_s = audio_seconds(cfg.play, "--play")  # a bad file or option fails here, before anything is built
    plan = _agents_plan(cfg)
    call_s = cfg.duration_s if cfg.duration_s is not None else played_s + 1.0
    files = _files(cfg)
    for path in (cfg.report, files["recording"]):
        path.parent.mkdir(parents=True, exist_ok=True)
    files["recording"].unlink(missing_ok=True)
    report: dict[str, Any] = {"play": str(cfg.play)}
    with Lab(cfg.profile, backward=cfg.backward, backend=cfg.backend, router=cfg.router) as lab:
        say(lab.info.describe())
        info = lab.info
        report["lab"] = {"lab_id": lab.lab_id, "backend": info.backend, "kernel": info.kernel,
                         "path": info.path, "profile": info.profile, "forward": info.forward,
                         "backward": info.backward}
        directions = {"forward": lab.forward, "backward": lab.backward}
        if cfg.probe_count > 0:
            report["probe"] = {}
            for name, spec in directions.items():
                if spec.is_clean():
                    continue
                result = probe(lab, cfg.probe_count, cfg.probe_rate, direction=name, seed=1)
                say(f"probe {name}: {result.describe()}")
                report["probe"][name] = probe_report(result, spec, cfg.probe_rate)
        capture = Capture(lab).start()
        try:
            callee, caller, failure = _run_agents(lab, cfg, plan, files, call_s, say)
            for name in directions:  # RTP still in flight (a router stalled by host load)
                if not wait_drained(lab, name):
                    say(f"note: no marker got {name} within 10 s; late packets count as lost")
        finally:
            packets = capture.stop()
        report["qdisc_stats"] = lab.qdisc_stats()
        report["netem_counters"] = netem_counters(report["qdisc_stats"])
    codec = negotiated(caller.text()) if caller is not None else negotiated("")
    if codec["codec"] is None:  # the caller died before media started: the callee may know
        codec = negotiated(callee.text())
    ends = {"caller": caller.call() if caller else None, "callee": callee.call()}
    either = ends["caller"] or ends["callee"] or {}  # the caller's view unless it left none
    report["call"] = {**codec, "connected": bool(either.get("connected")),
                      "nominal_bps": (ends["caller"] or {}).get("bitrate_bps"),
                      "duration_s": (ends["caller"] or {}).get("duration_s"),
                      "messages": {k: (v or {}).get("message") for k, v in ends.items()},
                      "error": failure}
    report["directions"] = {
        "forward": direction_report(packets, "caller", "callee", directions["forward"],
                                    codec["payload_type"], codec["clock_rate"], _media(callee)),
        "backward": direction_report(packets, "callee", "caller", directions["backward"],
                                     codec["payload_type"], codec["clock_rate"], _media(caller))}
    report["capture_errors"] = capture.errors
    heard = files["recording"]
    report["recording"] = str(heard) if heard.exists() and heard.stat().st_size > 44 else None
    report["files"] = {k: str(v) for k, v in files.items() if k != "recording"}
    code = 0 if failure is None and report["call"]["connected"] else 1
    report["exit_code"] = code
    cfg.report.write_text(json.dumps(report, indent=2, default=str))
    return code, report
