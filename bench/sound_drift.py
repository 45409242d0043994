"""Sound-card clock drift: the delay a card's pipes add, over a long call, with and without control.

Two parts (both by default):

--simulate: media/drift.py's controller against a card PPM off the machine's
  clock for --minutes (the product's arithmetic, engine ticks up to 15 ms
  late); per minute, the microphone pipe's delay change with no control and
  with it, and the correction it learnt.
--call: a real call. ``jackd -d dummy`` (a virtual card on a real JACK
  server), ``largesc answer`` playing a tone, ``largesc call --sound-device``
  for --minutes; per minute, from the caller's report (``sound_device.history``):
  both pipes' delays, the card's rate as measured, the corrections, and at
  the end drops, underruns and xruns. JACK's dummy driver paces its periods
  on the machine's clock (jack2 JackTimedDriver anchors cycle k at
  k * period / rate), so this card does not drift: the call shows that the
  control holds the delay flat on a real audio server over the whole call,
  and the simulation what it does against a drifting crystal.

    .venv/bin/python bench/sound_drift.py [--minutes 10] [--ppm 100,500] [--simulate-only | --call-only]
        [--weights DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
import wave
from pathlib import Path

import numpy as np

from sip_agent.media.drift import simulate

RATE = 24_000


def _minutes(levels: list[float], minutes: int) -> list[float]:
    """Mean level (ms) in each minute; a card block is 20 ms, so 3000 blocks a minute."""
    return [1000 * float(np.mean(levels[m * 3000 : (m + 1) * 3000])) / RATE for m in range(minutes)]


def run_simulation(ppms: list[float], minutes: int) -> None:
    print(f"simulated card vs engine (engine ticks up to 15 ms late), {minutes} min; microphone pipe delay "
          "change from minute 1 in ms (an unbounded pipe)")
    for ppm in ppms:
        free = _minutes(simulate(ppm, 60 * minutes, control=False, jitter_ms=15.0)[0], minutes)
        levels, ctl = simulate(ppm, 60 * minutes, control=True, jitter_ms=15.0)
        held = _minutes(levels, minutes)
        print(f"  {ppm:+6.0f} ppm  no control: " + " ".join(f"{x - free[0]:+6.1f}" for x in free))
        print(f"  {ppm:+6.0f} ppm  controlled: " + " ".join(f"{x - held[0]:+6.1f}" for x in held)
              + f"   correction {1e6 * ctl.correction:+.1f} ppm")


def _tone(path: Path, seconds: float) -> Path:
    t = np.arange(int(RATE * seconds)) / RATE
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(RATE)
        w.writeframes((0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2").tobytes())
    return path


def run_call(minutes: int, weights: str, work: Path) -> int:
    from sip_agent.sip.endpoint import free_sip_port

    name = f"bench-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "JACK_DEFAULT_SERVER": name, "JACK_NO_AUDIO_RESERVATION": "1", "JACK_NO_START_SERVER": "1"}
    jackd = subprocess.Popen(["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "960"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env)
    largesc = [sys.executable, "-m", "largesc_codec.cli"]
    codec = ["--weights", weights, "--plc", "repeat"]
    port = free_sip_port("127.0.0.1")
    seconds = 60 * minutes
    try:
        time.sleep(2)
        answer = subprocess.Popen(largesc + ["answer", "--port", str(port), "--calls", "1", "--timeout",
                                             str(seconds + 120), "--play", str(_tone(work / "tone.wav", 30)),
                                             *codec], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        time.sleep(8)
        report = work / "caller.json"
        call = subprocess.run(largesc + ["call", f"sip:bob@127.0.0.1:{port}", "--sound-device", "--duration",
                                         str(seconds), "--report-json", str(report), *codec],
                              env=env, capture_output=True, text=True, timeout=seconds + 180)
        answer.wait(60)
    finally:
        jackd.terminate()
        jackd.wait(10)
    if call.returncode != 0:
        print(f"the call failed (exit {call.returncode}):\n{call.stdout[-2000:]}")
        return 1
    card = json.loads(report.read_text())["sound_device"]
    print(f"\nreal call on JACK's dummy card ({card['rate']} Hz), {minutes} min, drift control "
          f"{'on' if card['drift_control'] else 'off'}: per minute")
    print("  minute  mic ms  speaker ms  card ppm  mic ppm  speaker ppm")
    for h in card["history"]:
        if h["t_s"] % 60 < 5 and h["t_s"] >= 55:
            print(f"  {h['t_s'] / 60:6.1f} {h['mic_ms']:7.1f} {h['speaker_ms']:11.1f} {h['card_ppm']:9.1f} "
                  f"{h['mic_ppm']:8.1f} {h['speaker_ppm']:12.1f}")
    print(f"  end: mic wait {card['mic_wait_ms']} ms, speaker wait {card['speaker_wait_ms']} ms; underruns "
          f"{card['mic_underruns']}/{card['speaker_underruns']}, dropped samples {card['mic_dropped']}/"
          f"{card['speaker_dropped']} (mic/speaker), xruns {card['xruns']}, error {card['error']}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--ppm", default="100,500", help="simulated card drifts, comma-separated")
    ap.add_argument("--simulate-only", action="store_true")
    ap.add_argument("--call-only", action="store_true")
    ap.add_argument("--weights", default=None, help="weights for the call (default: fresh test weights)")
    args = ap.parse_args()
    if not args.call_only:
        run_simulation([float(p) for p in args.ppm.split(",")], args.minutes)
    if args.simulate_only:
        return 0
    with tempfile.TemporaryDirectory(prefix="largesc-drift-") as tmp:
        weights = args.weights
        if weights is None:
            weights = str(Path(tmp) / "weights")
            subprocess.run([sys.executable, "-m", "largesc_codec.cli", "make-test-weights", weights], check=True,
                           capture_output=True)
        return run_call(args.minutes, weights, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
