"""Every `largesc` command that reads an audio file says the same about a bad one.

A directory, a missing file, an empty file and a file that does not decode
each get their own one-line message, naming the path and the fix, worded the
same by ``transmit``, ``bench latency``, ``finetune``, ``call --play``,
``answer --play`` and ``lab --play`` (exit 2, before anything is loaded: the
weights named do not even exist).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from largesc_codec.cli.app import main
from sip_agent.lab import lab as netem
from tests.sip_agent.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def no_lab(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a lab was built for bad input")

    monkeypatch.setattr(netem.Lab, "__init__", never)


def _commands(path: Path, tmp: Path) -> dict[str, list[str]]:
    nowhere = str(tmp / "no-weights")
    return {
        "transmit": ["transmit", str(path), str(tmp / "out.wav"), "--weights", nowhere],
        "bench": ["bench", "latency", str(path), "--weights", nowhere],
        "finetune": ["finetune", str(path), str(path), "--out", str(tmp / "adapters"), "--weights", nowhere],
        "call": ["call", "sip:bob@127.0.0.1:9", "--engine", "none", "--answer-timeout", "1", "--play", str(path)],
        "answer": ["answer", "--port", str(free_port()), "--engine", "none", "--timeout", "1", "--play", str(path)],
        "lab": ["lab", "--play", str(path), "--engine", "raw", "--report", str(tmp / "lab.json")],
    }


CASES = {
    "directory": ("clips", "is a directory: give an audio file"),
    "missing": ("speech.flac", ": no such file (the path does not exist): give an audio file"),
    "empty": ("empty.mp3", "is empty (0 bytes): give an audio file"),
    "undecodable": ("noise.wav", ": not a readable WAV file, cannot decode it"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_message_for_a_bad_audio_file_in_every_command(case: str, tmp_path: Path, no_lab: None,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    name, why = CASES[case]
    path = tmp_path / name
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.touch()
    elif case == "undecodable":
        path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" * 40)
    tails = {}
    for command, argv in _commands(path, tmp_path).items():
        if command == "finetune" and case == "directory":
            continue  # finetune takes directories of speech files
        assert main(argv) == 2, command
        captured = capsys.readouterr()
        lines = [ln for ln in (captured.out + captured.err).splitlines() if str(path) in ln]
        assert len(lines) == 1 and "Traceback" not in captured.err, (command, captured)
        line = lines[0]
        assert why in line and "WAV, FLAC, MP3, OGG" in line, (command, line)
        tails[command] = line[line.index(str(path)):]  # after "input " / "--play "
    assert len(set(tails.values())) == 1, tails
    assert not (tmp_path / "lab.json").exists() and not (tmp_path / "out.wav").exists()
