"""The codec-backed ``largesc`` media engine: real calls between ``largesc`` agents, and the engine alone.

What could go wrong and is checked here: the engine not being used by
``largesc call/answer``, frames flowing one way only, the sender ignoring
what it plays (codebooks follow the content), the recording losing call
time, the receiver's loss counters disagreeing with what the network
dropped, limits from SDP that cannot carry speech starting anyway, a taken
port or a bad file failing late or unclearly, fallback to a standard codec
breaking once the codec is mounted, and an unclean hang-up. Everything runs
on 127.0.0.1 with free ports; agents are subprocesses (one pjsua2 endpoint
per process) using the small untrained test weights, one torch thread each.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from largesc_codec.wire.offer_answer import LargeScParams
from sip_agent.media.engine import allocate_rtp_port
from sip_agent.media.types import AudioFiles, LargeScLink
from tests.sip_agent.conftest import HOST, REPO, AgentRun, dominant, free_port, only_call, tone_wav

pytestmark = [pytest.mark.sip, pytest.mark.timeout(180)]
STANDARD = ("PCMU/8000", "PCMA/8000", "G722/16000")


@pytest.fixture
def largesc(tmp_path: Path) -> Iterator[Any]:
    """Factory: ``largesc(name, *args)`` starts ``largesc *args`` (the mounted SIP commands) as a subprocess."""
    runs: list[AgentRun] = []

    def start(name: str, *args: str, env: dict[str, str] | None = None) -> AgentRun:
        out, report = tmp_path / f"{name}.out", tmp_path / f"{name}.json"
        full_env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                    "LARGESC_THREADS": "1", **(env or {})}
        with open(out, "wb") as sink:
            proc = subprocess.Popen([sys.executable, "-m", "largesc_codec.cli", *args, "--report-json", str(report)],
                                    cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, env=full_env)
        runs.append(AgentRun(proc, out, report, time.monotonic()))
        return runs[-1]

    yield start
    for run in runs:  # only our own children, by handle
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


def _wav(path: Path) -> tuple[int, int, np.ndarray[Any, np.dtype[np.int16]]]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), np.frombuffer(w.readframes(w.getnframes()), "<i2")


def test_two_largesc_agents_carry_codec_audio_both_ways(largesc: Any, tmp_path: Path, test_weights: Path) -> None:
    port, weights = free_port(), str(test_weights)
    play = tone_wav(tmp_path / "a.wav", 440, 2.5)  # the VAD takes a steady tone for speech: >= 4 codebooks
    heard_by_answerer, heard_by_caller = tmp_path / "b.wav", tmp_path / "a_rec.wav"
    answerer = largesc("answer", "answer", "--port", str(port), "--calls", "1", "--timeout", "120",
                       "--weights", weights, "--plc", "repeat", "--record", str(heard_by_answerer),
                       "--sip-log", str(tmp_path / "answer.log"))
    answerer.wait_for("waiting for calls", timeout=90)  # imports torch, loads and warms the models
    caller = largesc("call", "call", f"sip:bob@{HOST}:{port}", "--weights", weights, "--plc", "lm",
                     "--play", str(play), "--record", str(heard_by_caller), "--duration", "3")
    rc_call, call_report = caller.finish(timeout=120)
    rc_answer, answer_report = answerer.finish(timeout=30)
    assert (rc_call, rc_answer) == (0, 0), caller.text() + answerer.text()
    out, inc = only_call(call_report), only_call(answer_report)
    assert "we hung up: maximum duration 3 s reached" in out["message"]
    assert "the peer hung up" in inc["message"]
    assert re.search(r"^BYE sip:", (tmp_path / "answer.log").read_text(errors="replace"), re.M)  # BYE received
    for side in (out, inc):
        assert side["connected"] and side["codec"] == "LargeSC/24000", side
        media = side["media"]
        assert media["codec"] == "LargeSC/24000", media
        # Every 80 ms tick either sent its frame or was counted as skipped. Skips are timing: 0 alone,
        # 3 once in a full CI run on 2 cores (two agents' models beside the suite); capacity is a benchmark's.
        ticks = media["packets_sent"] + media["extra"]["overruns"]
        assert media["extra"]["overruns"] <= 5 and ticks >= media["duration_s"] * 12.5 - 3, media
        assert media["packets_sent"] >= 25 and media["packets_received"] >= 20, media  # ~3 s at 12.5 packets/s
        assert media["packets_lost"] == 0 and media["extra"]["malformed_payloads"] == 0, media
        assert media["extra"]["frames_primary"] >= 20, media  # decoded by the receiver, both ways
    # The sender codes what it plays: the tone as speech, the answerer's silence with 1 codebook.
    assert out["media"]["extra"]["mean_codebooks_sent"] >= 4 and inc["media"]["extra"]["mean_codebooks_received"] >= 4
    assert inc["media"]["extra"]["mean_codebooks_sent"] == 1 and out["media"]["extra"]["mean_codebooks_received"] == 1
    assert out["media"]["payload_bytes_sent"] > 2 * inc["media"]["payload_bytes_sent"]
    assert "LargeSC codec ready" in caller.text() and "negotiated codec: LargeSC/24000" in caller.text()
    for path in (heard_by_answerer, heard_by_caller):
        rate, channels, pcm = _wav(path)
        assert (rate, channels) == (24000, 1)
        assert 2.2 <= len(pcm) / rate <= 4.0, (path, len(pcm) / rate)  # the call's media time (3 s)
    # The codec's bytes arrive unchanged both ways: what one side sent under a sequence number is
    # what the other received under it (the untrained decoder sounds alike whatever it gets, so
    # the recordings cannot show this).
    for sender, receiver in ((out, inc), (inc, out)):
        sent, got = (_crc_by_seq(side, key) for side, key in ((sender, "sent"), (receiver, "received")))
        assert len(got) >= 20 and set(got) <= set(sent), (sorted(sent), sorted(got))
        assert {seq: sent[seq] for seq in got} == got
    assert len(set(_crc_by_seq(out, "sent").values())) > 10  # the tone's payloads differ frame to frame


def _crc_by_seq(call: dict[str, Any], direction: str) -> dict[int, int]:
    """``MediaStats.payload_crc32[direction]`` of a call report (JSON made the sequence numbers strings)."""
    return {int(seq): crc for seq, crc in call["media"]["payload_crc32"][direction].items()}


def test_largesc_caller_falls_back_to_a_standard_codec(largesc: Any, tmp_path: Path, test_weights: Path) -> None:
    port = free_port()
    answerer = largesc("answer", "answer", "--port", str(port), "--calls", "1", "--timeout", "60", "--engine", "none",
                       "--play", str(tone_wav(tmp_path / "660.wav", 660, 3.0)))
    answerer.wait_for("waiting for calls", timeout=30)
    caller = largesc("call", "call", f"sip:bob@{HOST}:{port}", "--weights", str(test_weights),
                     "--record", str(tmp_path / "heard.wav"), "--duration", "2")
    rc_call, call_report = caller.finish(timeout=90)
    rc_answer, _ = answerer.finish(timeout=30)
    assert (rc_call, rc_answer) == (0, 0), caller.text() + answerer.text()
    assert only_call(call_report)["codec"] in STANDARD and "LargeSC media" not in caller.text()
    freq, rms = dominant(tmp_path / "heard.wav")
    assert abs(freq - 660) < 5 and rms > 1000, (freq, rms)


def test_bad_weights_stop_the_agent_before_it_listens(largesc: Any, tmp_path: Path) -> None:
    rc, report = largesc("call", "call", f"sip:bob@{HOST}:{free_port()}", "--weights",
                         str(tmp_path / "nowhere")).finish(timeout=60)
    assert rc == 2 and "cannot load the LargeSC models" in report["error"] and "make-test-weights" in report["error"]


def test_without_weights_or_hub_auto_answers_with_standard_codecs(largesc: Any, tmp_path: Path) -> None:
    offline = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home")}  # no hub, no cache
    run = largesc("answer", "answer", "--port", str(free_port()), "--calls", "1", "--timeout", "1", env=offline)
    rc, report = run.finish(timeout=60)
    assert rc == 1 and report["calls"] == [], run.text()  # listened, nobody called
    assert "LargeSC is off for this run" in run.text() and "Give --weights DIR" in run.text()
    assert re.search(r"SIP on .*LargeSC off", run.text()), run.text()


# -- the engine alone, in this process (no pjsua2) -------------------------------------------


@pytest.fixture
def engine_env(test_weights: Path) -> Iterator[Any]:
    """Preloaded codec options; undoes the process-wide switch ``preload`` sets (moshi's lazy compile)."""
    from moshi.utils import compile as moshi_compile

    from sip_agent.media.setup import CodecOptions, preload

    before = moshi_compile._compile_disabled, os.environ.get("NO_TORCH_COMPILE")
    options = CodecOptions(weights=str(test_weights), plc="repeat")
    preload(options)
    yield options
    moshi_compile._compile_disabled = before[0]
    if before[1] is None:
        os.environ.pop("NO_TORCH_COMPILE", None)


def _wait_for(engine: Any, done: Any, timeout_s: float = 30.0) -> Any:
    """The engine's stats once ``done(stats)`` holds; fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not done(stats := engine.stats()):
        assert time.monotonic() < deadline, f"engine made no progress in {timeout_s} s: {stats}"
        time.sleep(0.02)
    return stats


class DropRelay:
    """A network between two engines: each side talks to its own relay port pair, as with a middlebox.

    What ``a`` sends to ``a_side`` (RTP on the even port, RTCP on the odd one) leaves ``b_side`` for
    ``b``, every ``every``-th RTP packet dropped; what ``b`` sends to ``b_side`` leaves ``a_side`` for
    ``a``. Each engine hears its peer from the one address it sends to (engines take media only from
    the negotiated peer).
    """

    def __init__(self, a: int, b: int, every: int) -> None:
        self.a_side, self.b_side, self.every = allocate_rtp_port(HOST), allocate_rtp_port(HOST), every
        self.forwarded = self.dropped = 0
        self._socks: dict[int, socket.socket] = {}
        for port in (self.a_side, self.a_side + 1, self.b_side, self.b_side + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((HOST, port))
            s.settimeout(0.1)
            self._socks[port] = s
        self._stop = threading.Event()
        routes = [(self.a_side + k, self.b_side + k, b + k, k == 0) for k in (0, 1)]
        routes += [(self.b_side + k, self.a_side + k, a + k, False) for k in (0, 1)]
        self._threads = [threading.Thread(target=self._run, args=r, daemon=True) for r in routes]
        for t in self._threads:
            t.start()

    def _run(self, listen: int, send_from: int, target: int, lossy: bool) -> None:
        sock, out = self._socks[listen], self._socks[send_from]
        while not self._stop.is_set():
            try:
                data = sock.recv(2048)
            except TimeoutError:
                continue
            if lossy:
                self.forwarded += 1
                if self.forwarded % self.every == 0:
                    self.dropped += 1
                    continue
            try:
                out.sendto(data, (HOST, target))
            except OSError:
                pass  # the engine on that side is gone (end of the test)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()
        for s in self._socks.values():
            s.close()


def test_engines_conceal_what_the_network_drops(engine_env: Any, tmp_path: Path) -> None:
    from sip_agent.media.largesc import LargeSCEngine

    wide, narrow = LargeScParams(ptime=160), LargeScParams(maxbps=1100, maxred=0)
    a_port, b_port = allocate_rtp_port(HOST), allocate_rtp_port(HOST)
    relay = DropRelay(a_port, b_port, every=4)  # a -> relay -> b loses every 4th packet
    a = LargeSCEngine(AudioFiles(tone_wav(tmp_path / "a.wav", 440, 3.0, rate=44100), tmp_path / "a_rec.wav"),
                      engine_env)
    b = LargeSCEngine(AudioFiles(tone_wav(tmp_path / "b.wav", 330, 3.0, rate=8000), tmp_path / "b_rec.wav"),
                      engine_env)
    began = time.monotonic()
    a.start(a_port, HOST, relay.a_side, LargeScLink(96, send=wide, receive=narrow))  # a sends 160 ms packets
    b.start(b_port, HOST, relay.b_side, LargeScLink(96, send=narrow, receive=wide))  # b: <= 1100 bit/s, no redundancy
    try:
        for e in (a, b):  # 3 s once both codecs run (start-up time varies by machine)
            _wait_for(e, lambda s: s.packets_sent >= 1)
        time.sleep(3.0)
    finally:
        a.stop()
        b.stop()
        call_s = time.monotonic() - began
        relay.close()
    a.stop()  # idempotent
    sa, sb = a.stats(), b.stats()
    assert sa.packets_sent >= 12 and sb.packets_sent >= 25, (sa, sb)  # 160 ms vs 80 ms packets over ~3 s
    assert relay.dropped >= 3 and sb.packets_lost in (relay.dropped, relay.dropped - 1), (relay.dropped, sb)
    assert sb.frames_concealed + sb.extra["frames_partial"] + sb.frames_recovered > 0, sb
    assert sa.packets_lost == 0 and sa.extra["frames_primary"] >= 20, sa
    # b keeps within a's limits: 1100 bit/s of payload is 7 codebooks and a ToC byte a frame, no redundancy
    assert sb.extra["max_bps"] == 1100 and 4 <= sb.extra["mean_codebooks_sent"] <= 7, sb
    assert sb.send_bitrate_bps <= 1100 and sa.extra["mean_codebooks_received"] <= 7, (sa, sb)
    for path, engine in ((tmp_path / "a_rec.wav", sa), (tmp_path / "b_rec.wav", sb)):
        rate, _, pcm = _wav(path)
        assert rate == 24000 and abs(len(pcm) / rate - call_s) <= 0.4, (len(pcm) / rate, call_s)  # call time
        assert engine.extra["recorded_s"] == pytest.approx(len(pcm) / rate)


def test_a_stalled_codec_skips_ahead_and_keeps_call_time(engine_env: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from sip_agent.media.largesc import LargeSCEngine
    from sip_agent.media.wav import PlaySource

    original, calls = PlaySource.next_tick, [0]

    def stall_once(self: PlaySource) -> Any:
        if self.path is not None:  # only a's source plays a file
            calls[0] += 1
            if calls[0] == 12:  # a's 12th tick takes 0.5 s
                time.sleep(0.5)
        return original(self)

    monkeypatch.setattr(PlaySource, "next_tick", stall_once)
    link = LargeScLink(96, LargeScParams(), LargeScParams())
    a_port, b_port = allocate_rtp_port(HOST), allocate_rtp_port(HOST)
    a = LargeSCEngine(AudioFiles(tone_wav(tmp_path / "a.wav", 440, 3.0), tmp_path / "a_rec.wav"), engine_env)
    b = LargeSCEngine(AudioFiles(None, tmp_path / "b_rec.wav"), engine_env)
    b.start(b_port, HOST, a_port, link)
    began = time.monotonic()
    a.start(a_port, HOST, b_port, link)
    try:
        # Wait for the stall itself (model loading may delay a's first tick on a loaded machine),
        # then ~1.6 s more: the call is then about 2.5 s old.
        deadline = time.monotonic() + 30.0
        while calls[0] < 12 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert calls[0] >= 12, "a's source never reached its 12th tick"
        time.sleep(1.6)
    finally:
        a.stop()
        call_s = time.monotonic() - began
        b.stop()
    sa, sb = a.stats(), b.stats()
    assert sa.extra["overruns"] >= 5, sa  # 0.5 s late: the missed ticks were skipped, not queued
    assert abs(sa.extra["recorded_s"] - call_s) <= 0.3, (call_s, sa)  # the recording still keeps call time
    assert sb.packets_lost == 0, sb  # sequence numbers stay contiguous: only the frame clock jumped
    invented = sb.frames_concealed + sb.extra["frames_comfort"] + sb.extra["jitter_buffer_skipped"]
    assert invented >= 3, sb  # b filled (or skipped) the frames a never sent


def test_sequential_calls_reuse_the_lm(engine_env: Any, tmp_path: Path) -> None:
    from sip_agent.media.largesc import LargeSCEngine
    from sip_agent.media.setup import MODELS, preload

    options = type(engine_env)(weights=engine_env.weights, plc="lm")
    preload(options)
    lm = MODELS.take_lm(options.weights, None)
    MODELS.give_back_lm(options.weights, None, lm)
    link = LargeScLink(96, LargeScParams(), LargeScParams())
    for n in range(2):  # nobody listens at the peer's port: the engine still runs its clock
        engine = LargeSCEngine(AudioFiles(None, tmp_path / f"rec{n}.wav"), options)
        engine.start(allocate_rtp_port(HOST), HOST, allocate_rtp_port(HOST), link)
        try:  # counted from the engine's progress, not a fixed sleep: start-up time varies by machine
            stats = _wait_for(engine, lambda s: s.packets_sent >= 6)
        finally:
            engine.stop()  # raises if the codec failed with the re-used LM
        assert stats.packets_sent >= 6, stats
    assert MODELS.take_lm(options.weights, None) is lm  # left streaming mode and came back both times
    MODELS.give_back_lm(options.weights, None, lm)


def test_engine_start_failures_are_clear(engine_env: Any, tmp_path: Path) -> None:
    from sip_agent.media.largesc import LargeSCEngine

    ok = LargeScParams()
    with pytest.raises(ValueError, match=r"maxbps 275 is outside 300.0"):  # no payload fits: refused in SDP
        LargeScParams(maxbps=275)
    few = LargeScLink(96, send=LargeScParams(maxcodebooks=2), receive=ok)
    with pytest.raises(ValueError, match="maxcodebooks=2"):
        LargeSCEngine(AudioFiles(), engine_env).start(allocate_rtp_port(HOST), HOST, 40000, few)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError, match="junk.wav: not a readable WAV file"):
        LargeSCEngine(AudioFiles(junk), engine_env).start(allocate_rtp_port(HOST), HOST, 40000, LargeScLink(96, ok, ok))
    port = allocate_rtp_port(HOST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind((HOST, port))
        engine = LargeSCEngine(AudioFiles(None, tmp_path / "never.wav"), engine_env)
        with pytest.raises(RuntimeError, match=f"could not bind UDP 127.0.0.1:{port}"):
            engine.start(port, HOST, 40000, LargeScLink(96, ok, ok))
    engine.stop()  # nothing started: a no-op
    with pytest.raises(ValueError, match="--max-bps 299"):  # below one codebook a frame
        type(engine_env)(weights=engine_env.weights, max_bps=299).check()
    type(engine_env)(weights=engine_env.weights, max_bps=300).check()  # the floor itself is fine


def test_the_pull_phase_puts_a_pull_a_margin_after_the_frame_is_due() -> None:
    from largesc_codec.types import FRAME_MS, FrameSource
    from sip_agent.media.clock import PULL_MARGIN_MS, may_rephase, pull_phase_ms, start_slot

    origin = 5000.0
    for due in (origin + 5 * FRAME_MS + 37.5, origin + 12 * FRAME_MS + 79.0, origin - 3 * FRAME_MS + 1.0):
        phase = pull_phase_ms(due, origin)
        assert 0.0 <= phase < FRAME_MS
        k = round((due + PULL_MARGIN_MS - origin - phase) / FRAME_MS)  # the pull slot that plays the frame
        assert origin + k * FRAME_MS + phase == pytest.approx(due + PULL_MARGIN_MS)
    assert pull_phase_ms(origin + 78.5, origin) == pytest.approx(0.5)  # wraps into [0, 80)
    # At (re)starts (idle or buffering, or an outage playing comfort) and between quiet frames;
    # never mid-talkspurt (or on a hold).
    assert may_rephase(False, None) and may_rephase(True, FrameSource.COMFORT)
    assert may_rephase(True, FrameSource.PRIMARY, quiet=True)
    assert not any(may_rephase(True, s) for s in (None, FrameSource.PRIMARY, FrameSource.RECOVERED,
                                                   FrameSource.PARTIAL, FrameSource.CONCEALED))
    # A start re-uses the slot a silent pull just used when the first frame is due after that pull ...
    assert start_slot(origin + 5 * FRAME_MS + 40.0, origin, pulls=6, last_pull_ms=origin + 5 * FRAME_MS + 10.0) == 5
    # ... but never one whose pull came after the due time, nor an older one.
    assert start_slot(origin + 5 * FRAME_MS + 5.0, origin, pulls=6, last_pull_ms=origin + 5 * FRAME_MS + 10.0) == 6
    assert start_slot(origin + 3 * FRAME_MS + 40.0, origin, pulls=6, last_pull_ms=origin + 5 * FRAME_MS + 10.0) == 6
    assert start_slot(origin + 6 * FRAME_MS + 40.0, origin, pulls=6, last_pull_ms=origin + 5 * FRAME_MS + 10.0) == 6


def test_pulls_are_aligned_to_the_arrivals(engine_env: Any, tmp_path: Path) -> None:
    # Nothing to play: every frame is quiet, so the buffer sheds any start-up backlog at once. A pull
    # clock running free would leave the delay anywhere in [target, target + 80); aligned pulls play a
    # frame PULL_MARGIN_MS (2) after it is due, plus the wake-up and the other direction's encoding.
    from sip_agent.media.largesc import LargeSCEngine

    link = LargeScLink(96, LargeScParams(), LargeScParams())
    a_port, b_port = allocate_rtp_port(HOST), allocate_rtp_port(HOST)
    a = LargeSCEngine(AudioFiles(None, tmp_path / "a_rec.wav"), engine_env)
    b = LargeSCEngine(AudioFiles(None, tmp_path / "b_rec.wav"), engine_env)
    a.start(a_port, HOST, b_port, link)
    time.sleep(0.037)  # an arbitrary phase between the two send clocks
    b.start(b_port, HOST, a_port, link)
    try:
        for e in (a, b):  # the 2.5 s window starts once both codecs run (start-up time varies by machine)
            _wait_for(e, lambda s: s.packets_sent >= 1)
        time.sleep(2.5)
        stats = [e.stats() for e in (a, b)]
    finally:
        a.stop()
        b.stop()
    for s in stats:
        assert s.extra["frames_primary"] >= 15 and s.extra["overruns"] == 0, s
        assert s.extra["jitter_buffer_ms"] < s.extra["jitter_buffer_target_ms"] + 30.0, s


def test_the_engine_runs_mimi_at_the_asked_precision(engine_env: Any, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """``--mimi-precision fp16`` reaches each call's own encoder and decoder; audio still flows both ways."""
    from largesc_codec.neural.decoder import MimiDecoder
    from largesc_codec.neural.encoder import MimiEncoder
    from sip_agent.media.largesc import LargeSCEngine

    built: list[tuple[str, str]] = []
    for cls in (MimiEncoder, MimiDecoder):  # record what the real constructors made
        def spy(self: Any, *args: Any, __init: Any = cls.__init__, **kwargs: Any) -> None:
            __init(self, *args, **kwargs)
            built.append((type(self).__name__, self.acceleration.precision))
        monkeypatch.setattr(cls, "__init__", spy)
    with pytest.raises(ValueError, match="--mimi-precision 'int8'"):
        type(engine_env)(weights=engine_env.weights, mimi_precision="int8").check()
    options = type(engine_env)(weights=engine_env.weights, plc="repeat", mimi_precision="fp16")
    options.check()
    a_port, b_port = allocate_rtp_port(HOST), allocate_rtp_port(HOST)
    a = LargeSCEngine(AudioFiles(tone_wav(tmp_path / "a.wav", 440, 2.0), tmp_path / "a_rec.wav"), options)
    b = LargeSCEngine(AudioFiles(None, tmp_path / "b_rec.wav"), options)
    a.start(a_port, HOST, b_port, LargeScLink(96, LargeScParams(), LargeScParams()))
    b.start(b_port, HOST, a_port, LargeScLink(96, LargeScParams(), LargeScParams()))
    try:
        for e in (a, b):
            _wait_for(e, lambda s: s.packets_received >= 10)
    finally:
        a.stop()
        b.stop()
    assert sorted(built) == [("MimiDecoder", "fp16")] * 2 + [("MimiEncoder", "fp16")] * 2, built
    assert b.stats().extra["frames_primary"] >= 8 and a.stats().extra["frames_primary"] >= 8
