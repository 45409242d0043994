"""`largesc lab`: bad input fails at once (exit 2, one line), before any lab is built."""

from __future__ import annotations

import importlib.util
import random
import wave
from pathlib import Path

import pytest

from largesc_codec.cli.app import main
from sip_agent.lab import lab as netem


@pytest.fixture
def no_lab(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a lab (boots UML: seconds) is a test failure here."""
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a lab was built for bad input")

    monkeypatch.setattr(netem.Lab, "__init__", never)


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(24000)
        w.writeframes(b"\x00\x01" * 2400)
    return path


def test_bad_play_file_fails_before_anything_is_built(tmp_path: Path, no_lab: None,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "noise.wav"
    bad.write_bytes(random.Random(0).randbytes(2000))
    for play, why in ((bad, "not a readable WAV file"), (tmp_path / "missing.wav", "no such file")):
        assert main(["lab", "--play", str(play), "--report", str(tmp_path / "lab.json")]) == 2
        assert why in capsys.readouterr().err
    assert not (tmp_path / "lab.json").exists()


@pytest.mark.parametrize("args, why", [
    (["--engine", "bogus"], "argument --engine: invalid choice: 'bogus'"),
    (["--profile", "no-such"], "argument --profile: invalid choice: 'no-such'"),
    (["--netem", "delay 10"], "argument --netem: bad netem spec 'delay 10'"),
    (["--reverse-netem", "loss 200%"], "argument --reverse-netem: bad netem spec"),
    (["--duration", "0"], "argument --duration: '0' is not a number of seconds > 0"),
    (["--duration", "soon"], "argument --duration: 'soon' is not"),
    (["--answer-timeout", "-1"], "argument --answer-timeout: '-1' is not"),
    (["--probe", "-5"], "argument --probe: '-5' is not a packet count >= 0"),
    (["--probe", "1.5"], "argument --probe: '1.5' is not"),
    (["--probe-rate", "0"], "argument --probe-rate: '0' is not packets per second > 0"),
    (["--probe-rate", "nan"], "argument --probe-rate: 'nan' is not"),
    (["--weights", "/no/such/dir"], "argument --weights: /no/such/dir: no such directory"),
])
def test_bad_options_fail_while_parsing(wav: Path, tmp_path: Path, no_lab: None, args: list[str],
                                        why: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["lab", "--play", str(wav), "--report", str(tmp_path / "lab.json"), *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert why in err and "Traceback" not in err, err
    assert not (tmp_path / "lab.json").exists()


def test_missing_codec_engine_fails_before_the_lab(wav: Path, tmp_path: Path, no_lab: None,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "sip_agent.media.largesc" else real(name, *a))
    assert main(["lab", "--play", str(wav), "--engine", "largesc",
                 "--report", str(tmp_path / "lab.json")]) == 2
    assert "--engine largesc: the codec-backed media engine" in capsys.readouterr().err


class _Reached(Exception):
    """Raised where the lab would be built: every check before it passed."""


@pytest.fixture
def reach_lab(monkeypatch: pytest.MonkeyPatch) -> None:
    def reached(*args: object, **kwargs: object) -> None:
        raise _Reached

    monkeypatch.setattr(netem.Lab, "__init__", reached)


@pytest.mark.parametrize("name, rate", [("speech.flac", 44_100), ("speech.mp3", 22_050), ("speech.ogg", 48_000)])
def test_any_audio_file_transmit_reads_is_played(tmp_path: Path, reach_lab: None, name: str, rate: int) -> None:
    from sip_agent.lab.call import LabCallConfig, check_config
    from tests.audio_files import write_tone

    play = write_tone(tmp_path / name, 1.5, rate)
    assert check_config(LabCallConfig(play=play, report=tmp_path / "lab.json", engine="raw")) == pytest.approx(
        1.5, abs=0.05)
    with pytest.raises(_Reached):
        main(["lab", "--play", str(play), "--engine", "raw", "--report", str(tmp_path / "lab.json")])


def test_bad_play_files_get_the_shared_message(tmp_path: Path, no_lab: None,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.flac").touch()
    for play, why in ((tmp_path, "is a directory"), (tmp_path / "empty.flac", "is empty (0 bytes)"),
                      (tmp_path / "gone.mp3", "no such file")):
        assert main(["lab", "--play", str(play), "--engine", "raw", "--report", str(tmp_path / "lab.json")]) == 2
        err = capsys.readouterr().err.strip()
        assert f"--play {play}" in err and why in err and "WAV, FLAC, MP3, OGG" in err, err
        assert len(err.splitlines()) == 1


def test_weights_the_agents_cannot_load_fail_before_the_lab(wav: Path, tmp_path: Path, no_lab: None,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty-weights"
    empty.mkdir()
    base = ["lab", "--play", str(wav), "--engine", "largesc", "--report", str(tmp_path / "lab.json")]
    for extra, why in ((["--weights", "hf://largesc-tests/no-such-repo"], "not in the local model hub cache"),
                       (["--weights", str(empty)], "missing weight files")):
        assert main([*base, *extra]) == 2  # at once: no router built, no probe sent
        err = capsys.readouterr().err.strip()
        assert why in err and "--weights" in err and "make-test-weights" in err and "--engine raw" in err, err
        assert len(err.splitlines()) == 1
    monkeypatch.setenv("LARGESC_WEIGHTS", str(empty))  # the default comes from the environment
    assert main(base) == 2 and "missing weight files" in capsys.readouterr().err
    assert not (tmp_path / "lab.json").exists()


def test_weights_from_the_environment_reach_both_agents(wav: Path, tmp_path: Path, test_weights: Path,
                                                        reach_lab: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from sip_agent.lab.call import LabCallConfig, _agents_plan

    monkeypatch.setenv("LARGESC_WEIGHTS", str(test_weights))
    with pytest.raises(_Reached):  # the cheap checks pass (nothing is loaded), then the lab would be built
        main(["lab", "--play", str(wav), "--engine", "largesc", "--report", str(tmp_path / "lab.json")])
    _, engine, args = _agents_plan(LabCallConfig(play=wav, report=tmp_path / "lab.json", engine="largesc",
                                                 weights=str(test_weights)))
    assert engine == "largesc" and args[args.index("--weights") + 1] == str(test_weights)
    with pytest.raises(_Reached):  # test payloads need no weights: none are checked
        main(["lab", "--play", str(wav), "--engine", "raw", "--weights", "hf://largesc-tests/no-such-repo",
              "--report", str(tmp_path / "lab.json")])
