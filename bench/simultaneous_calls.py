"""Simultaneous full-duplex LargeSC calls in the product: one `largesc answer` carrying N calls at once.

What runs, for each N of --calls-list, on loopback (127.0.0.1, a SIP port
picked free at run time, RTP ports picked by the engine itself):

* one `largesc answer --max-calls N --calls N --plc repeat|lm` with
  FULL-SIZE Mimi test weights (`largesc make-test-weights DIR --mimi full`:
  moshi's own Mimi config, 79.3 M parameters, random weights, the fast CPU
  path the product uses by default) and the small test LM (only run with
  --plc lm); it plays a tone into every call, so both directions carry
  speech frames: N full-duplex calls, each with its own Mimi encoder and
  decoder, in one process;
* N `largesc call sip:bob@127.0.0.1:PORT` processes, each playing a tone (or
  --play FILE) for --seconds and then hanging up. The callers run with the
  SMALL test weights, so the machine's CPU goes to the answerer's N
  full-size-Mimi calls. The two Mimis speak the same tokens: the script checks
  that both checkpoints have the same codebook count (32), codebook size
  (2048 entries), frame rate (12.5 Hz) and sample rate, and stops if not.
  Their CPU time is reported too, so the reader sees what they cost.

Every process runs 1 torch thread unless --threads says otherwise
(LARGESC_THREADS, as the SIP tests run the agents).

Per call, from the answerer's --report-json: overruns (codec events 240 ms
or more late, whose missed 80 ms slots were skipped: the CPU fell behind),
frames played as received (frames_primary), frames concealed, packets lost,
jitter_buffer_ms at the end, and codec_startup_ms (from the answer to the
call's codec running: its Mimi copies built and warmed); beside them the
frames played as received, concealed frames and overruns of the caller that
call talked to (the other direction: the answerer's sends late show there;
each caller calls as user callerPORT, so the answerer's report names it).
Per N: the answerer's CPU seconds (in all; after its "waiting for calls",
i.e. without loading the models; and as cores busy while all N calls were
up, from the last caller's connect to the first hang-up), the callers' CPU
seconds (in all, and after their connect), how long all N calls were up
together and how far apart the callers connected.

Verdict "real time" for a call: on both sides 0 overruns, no more concealed
frames than a call's first second's adaptation can account for
(ADAPT_FRAMES = 12: the jitter buffer starts at its smallest target and a
late packet in the first second may be concealed once while it adapts), and
frames played as received (a receiver that never started conceals nothing:
this catches it). N is real time when every call is. The reports give
totals only, not when a frame was concealed, so the allowance is a count,
not a time window; on a lossless loopback anything beyond it is lateness
from a CPU that does not keep up. The codec's start-up (start ms) is shown,
not judged: while it runs the call is silent and the peer's first packets
queue (the jitter buffer then skips the stale ones), and a call starting
while others run takes CPU from them (their overruns show that). The
callers start together and load their (small) models in parallel, so the
first calls may overlap the last callers' start-up by a second or two
("connects apart s" shows it).

    .venv/bin/python bench/simultaneous_calls.py [--calls-list 1,2,3,4] [--seconds 60] [--plc repeat|lm]
        [--answer-weights DIR] [--caller-weights DIR] [--play FILE] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import STDOUT, Popen
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from largesc_codec.neural.model import resolve_checkpoint  # noqa: E402
from largesc_codec.train.testweights import make_test_weights  # noqa: E402
from largesc_codec.types import MIMI_PRECISIONS  # noqa: E402
from sip_agent.sip.endpoint import PJSUA_CALL_SLOTS, free_sip_port  # noqa: E402

HOST = "127.0.0.1"
ADAPT_FRAMES = 12  # frames in a call's first second (80 ms each): the jitter buffer's start-up allowance
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
LARGESC = [str(Path(sys.executable).with_name("largesc"))]
if not Path(LARGESC[0]).exists():
    LARGESC = [sys.executable, "-m", "largesc_codec.cli"]


@dataclass
class Agent:
    """One `largesc` process, its output file and report; CPU seconds from /proc and wait4."""

    name: str
    proc: Popen[bytes]
    out: Path
    report_path: Path
    cpu_ready: float = 0.0  # CPU seconds when it printed its ready line
    ready_at: float = 0.0  # time.monotonic() then
    ended_at: float = 0.0
    cpu_total: float = 0.0
    rc: int | None = None
    report: dict[str, Any] = field(default_factory=dict)
    sip_port: int = 0

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def cpu_now(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime, stime

    def poll_ready(self, needle: str) -> bool:
        """True once ``needle`` is in its output (CPU time and moment noted the first time)."""
        if not self.ready_at and needle in self.text():
            self.cpu_ready, self.ready_at = self.cpu_now(), time.monotonic()
        return bool(self.ready_at)

    def exited(self) -> bool:
        """Whether it has exited, leaving it unreaped (Popen.poll would reap it and lose its rusage)."""
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return self.rc is not None or os.waitid(os.P_PID, self.proc.pid, flags) is not None

    def try_reap(self, kill: bool = False) -> bool:
        """True once it has exited (killed first with ``kill``); then exit code, total CPU (wait4), report kept."""
        if self.rc is not None:
            return True
        if kill:
            self.proc.kill()
        pid, status, usage = os.wait4(self.proc.pid, 0 if kill else os.WNOHANG)
        if not pid:
            return False
        self.ended_at = time.monotonic()
        self.rc = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.rc  # reaped here: Popen must not wait for it again
        self.cpu_total = usage.ru_utime + usage.ru_stime
        if self.report_path.exists():
            self.report = json.loads(self.report_path.read_text())
        return True

    def reap(self, timeout: float) -> None:
        """Wait for the exit; past ``timeout`` kill it and say so."""
        end = time.monotonic() + timeout
        while not self.try_reap():
            if time.monotonic() > end:
                self.try_reap(kill=True)
                print(f"{self.name}: still running after {timeout:.0f} s, killed; output:\n{self.text()[-2000:]}")
            time.sleep(0.05)


def start(name: str, work: Path, threads: int, *args: str) -> Agent:
    out, report = work / f"{name}.out", work / f"{name}.json"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if threads:
        env["LARGESC_THREADS"] = str(threads)
    with open(out, "wb") as sink:
        proc = Popen([*LARGESC, *args, "--report-json", str(report)], cwd=REPO, stdout=sink, stderr=STDOUT, env=env)
    sip_port = int(args[args.index("--sip-port") + 1]) if "--sip-port" in args else 0
    return Agent(name, proc, out, report, sip_port=sip_port)


def tone(path: Path, freq: float, seconds: float, rate: int = 16000) -> Path:
    """A mono 16-bit sine at 0.3 of full scale (the sender's VAD takes a steady tone for speech)."""
    samples = (0.3 * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def token_format(weights: Path) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """(Mimi config, (codebooks, entries, frame rate, sample rate)) of a weights directory, nothing loaded."""
    from moshi.models import loaders

    config: dict[str, Any] = resolve_checkpoint(str(weights)).mimi_config or loaders._mimi_config  # None: moshi's
    q = config["quantizer"]
    return config, (q["n_q"], q["bins"], config["frame_rate"], config["sample_rate"])


def weights(given: str | None, kind: str, work: Path) -> Path:
    if given:
        return Path(given)
    print(f"writing {kind} test weights (largesc make-test-weights --mimi {kind}) ...", flush=True)
    return make_test_weights(work / f"weights-{kind}", mimi=kind)


def wait_until(agents: list[Agent], needle: str, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all(a.poll_ready(needle) for a in agents):
            return True
        if any(a.exited() and not a.ready_at for a in agents):
            return False
        time.sleep(0.05)
    return False


def run_n(n: int, args: argparse.Namespace, answer_w: Path, caller_w: Path, work: Path) -> dict[str, Any]:
    """One answerer with N calls and N callers; their reports, CPU and timing."""
    port, agents = free_sip_port(HOST), []
    try:
        answerer = start(f"answer{n}", work, args.answer_threads, "answer", "--port", str(port), "--calls", str(n),
                         "--max-calls", str(n), "--timeout", str(int(args.seconds + 300)), "--weights",
                         str(answer_w), "--plc", args.plc, "--play", str(work / "answer_tone.wav"),
                         *(["--batch"] if args.batch else []), "--mimi-precision", args.mimi_precision)
        agents.append(answerer)
        if not wait_until([answerer], "waiting for calls", 300):
            raise RuntimeError(f"the answerer did not get ready:\n{answerer.text()[-2000:]}")
        ports: set[int] = set()
        while len(ports) < n:  # each caller's own SIP port, and user name callerPORT: the answerer names its peer
            ports.add(free_sip_port(HOST))
            ports.discard(port)
        callers = [start(f"call{n}_{p}", work, args.threads, "call", f"sip:bob@{HOST}:{port}", "--sip-port",
                         str(p), "--user", f"caller{p}", "--weights", str(caller_w), "--plc", args.plc,
                         "--play", str(args.play), "--duration", f"{args.seconds:g}") for p in sorted(ports)]
        agents += callers
        if not wait_until(callers, "negotiated codec: LargeSC", 180):
            raise RuntimeError("not every caller got its LargeSC call up:\n"
                               + "\n---\n".join(c.text()[-800:] for c in callers))
        # The answerer's CPU while all N calls are up: from the last connect to the first hang-up.
        up_cpu, up_at = answerer.cpu_now(), time.monotonic()
        end = up_at + args.seconds + 120
        while time.monotonic() < end and not any(c.exited() or "hanging up" in c.text()
                                                 for c in callers):
            time.sleep(0.05)
        together = (answerer.cpu_now() - up_cpu, time.monotonic() - up_at)
        for c in callers:
            c.reap(max(1.0, end - time.monotonic()))
        answerer.reap(60)
    finally:
        for a in agents:  # only our own children, by handle
            if a.rc is None and a.proc.poll() is None:
                a.proc.kill()
                a.proc.wait()
    return {"n": n, "answerer": answerer, "callers": callers, "together_cpu_s": together[0],
            "together_s": together[1],
            "stagger_s": max(c.ready_at for c in callers) - min(c.ready_at for c in callers)}


def _row(cols: tuple[Any, ...], widths: tuple[int, ...]) -> str:
    return " | ".join(f"{c!s:>{w}}" for c, w in zip(cols, widths))


def kept_up(media: dict[str, Any]) -> bool:
    """One side of a call in real time: no overruns, concealment within the first second's, frames played."""
    x = media.get("extra", {})
    return (x.get("overruns", 1) == 0 and media.get("frames_concealed", ADAPT_FRAMES + 1) <= ADAPT_FRAMES
            and x.get("frames_primary", 0) > 0)


def call_rows(r: dict[str, Any]) -> tuple[list[tuple[Any, ...]], bool]:
    """Per answered call: its figures, its caller's, and whether it kept real time; and all of N together."""
    n, answerer, callers = r["n"], r["answerer"], r["callers"]
    calls = answerer.report.get("calls", [])
    all_ok = answerer.rc == 0 and len(calls) == n and all(c.rc == 0 for c in callers)
    rows = []
    for i, call in enumerate(calls, 1):
        m = call.get("media") or {}
        x = m.get("extra", {})
        mine = [c for c in callers if c.report.get("calls") and f"caller{c.sip_port}@" in str(call.get("peer"))]
        cm = (mine[0].report["calls"][0].get("media") or {}) if mine else {}
        cx = cm.get("extra", {})
        ok = bool(cm) and kept_up(m) and kept_up(cm)
        all_ok = all_ok and ok
        rows.append((n, i, int(x.get("overruns", -1)), int(x.get("frames_primary", -1)),
                     m.get("frames_concealed", -1), m.get("packets_lost", -1), f"{x.get('jitter_buffer_ms', -1):.0f}",
                     f"{x.get('codec_startup_ms', -1):.0f}", int(cx.get("frames_primary", -1)),
                     cm.get("frames_concealed", -1), int(cx.get("overruns", -1)), "yes" if ok else "NO"))
    return rows, all_ok


def table(results: list[dict[str, Any]], cores: int) -> None:
    print("\nPer call (answerer's report; caller = the caller that call talked to)")
    head = ("N", "call", "overruns", "primary", "concealed", "lost", "jb ms", "start ms",
            "caller primary", "caller concealed", "caller overruns", "real time")
    widths = tuple(max(4, len(h)) for h in head)
    print(_row(head, widths))
    verdicts = {}
    for r in results:
        rows, verdicts[r["n"]] = call_rows(r)
        for row in rows:
            print(_row(row, widths))
    print(f"\nPer N (CPU seconds; {cores} cores; 'all up' = from the last caller's connect to the first hang-up)")
    head2 = ("N", "real time", "answerer CPU s", "after ready", "cores while all up", "callers CPU s", "in calls",
             "all up s", "connects apart s", "exit codes")
    widths = tuple(max(4, len(h)) for h in head2)
    print(_row(head2, widths))
    for r in results:
        a, callers = r["answerer"], r["callers"]
        callers_cpu = sum(c.cpu_total for c in callers)
        callers_in = sum(c.cpu_total - c.cpu_ready for c in callers)
        print(_row((r["n"], "yes" if verdicts[r["n"]] else "NO", f"{a.cpu_total:.1f}",
                    f"{a.cpu_total - a.cpu_ready:.1f}", f"{r['together_cpu_s'] / max(r['together_s'], 1e-9):.2f}",
                    f"{callers_cpu:.1f}", f"{callers_in:.1f}", f"{r['together_s']:.1f}", f"{r['stagger_s']:.1f}",
                    f"{a.rc}/{','.join(str(c.rc) for c in callers)}"), widths))
    fit = 0  # the largest N that kept real time with every smaller N measured
    for n in sorted(verdicts):
        if not verdicts[n]:
            break
        fit = n
    print(f"\nlargest N in real time (every smaller N measured too): {fit}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls-list", default="1,2,3,4", help=f"N values (1..{PJSUA_CALL_SLOTS}: pjsua2's call slots)")
    ap.add_argument("--seconds", type=float, default=60.0, help="how long each caller plays before hanging up")
    ap.add_argument("--plc", choices=("repeat", "lm"), default="repeat", help="concealer on both sides")
    ap.add_argument("--answer-weights", help="full-size-Mimi weights dir (default: written to a temp dir)")
    ap.add_argument("--caller-weights", help="small test weights dir (default: written to a temp dir)")
    ap.add_argument("--play", help="what each caller plays (default: a 440 Hz tone)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (0: torch's default)")
    ap.add_argument("--answer-threads", type=int, default=None, help="torch threads of the answerer (default: --threads)")
    ap.add_argument("--batch", action="store_true",
                    help="the answerer batches all calls' Mimi steps (`answer --batch`; default: a Mimi pair per call)")
    ap.add_argument("--mimi-precision", choices=MIMI_PRECISIONS, default="fp32",
                    help="the answerer's Mimi arithmetic (`answer --mimi-precision`; fp16: fp16 weights)")
    ap.add_argument("--keep", help="keep outputs and reports in this directory (default: a temp dir, removed)")
    args = ap.parse_args()
    ns = [int(x) for x in args.calls_list.split(",")]
    if args.answer_threads is None:
        args.answer_threads = args.threads
    if not all(1 <= n <= PJSUA_CALL_SLOTS for n in ns):
        ap.error(f"each N must be 1..{PJSUA_CALL_SLOTS} (pjsua2's call slots in one process)")
    with tempfile.TemporaryDirectory(prefix="largesc-simcalls-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        answer_w, caller_w = weights(args.answer_weights, "full", work), weights(args.caller_weights, "small", work)
        (full_cfg, a_fmt), (_, c_fmt) = token_format(answer_w), token_format(caller_w)
        if a_fmt != c_fmt:
            print(f"token formats differ: answerer {a_fmt}, callers {c_fmt} (codebooks, entries, Hz, rate)")
            return 2
        from moshi.models import loaders

        full = full_cfg == loaders._mimi_config
        args.play = Path(args.play) if args.play else tone(work / "caller_tone.wav", 440, args.seconds + 2)
        tone(work / "answer_tone.wav", 660, args.seconds + 30)
        cores = os.cpu_count() or 1
        print(f"answerer Mimi {'full-size (moshi config)' if full else 'NOT full-size'} from {answer_w}, callers "
              f"{caller_w}; tokens {a_fmt[0]} codebooks x {a_fmt[1]} at {a_fmt[2]} Hz on both; --plc {args.plc}, "
              f"{args.seconds:g} s calls, {args.threads or 'default'} torch thread(s) per caller, "
              f"{args.answer_threads or 'default'} for the answerer ({'calls batched' if args.batch else 'a Mimi pair per call'}, Mimi {args.mimi_precision}), {cores} cores; "
              f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
        results = []
        for n in ns:
            print(f"N={n} ...", flush=True)
            results.append(run_n(n, args, answer_w, caller_w, work))
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        table(results, cores)
    return 0


if __name__ == "__main__":
    sys.exit(main())
