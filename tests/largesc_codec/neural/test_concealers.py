"""The concealer registry and the Concealer interface: one list of names, complete implementations."""

from __future__ import annotations

import inspect
import subprocess
import sys
from typing import Any

import pytest

from largesc_codec.neural.concealers import Concealer, RepeatConcealer, SilenceConcealer
from largesc_codec.neural.plc import CONCEALERS, PLC_CHOICES, build_concealer, check_concealer, uses_lm

MEMBERS = ("observe", "conceal", "observe_late", "reset", "prepare", "close", "timings_ms")


def _no_lm() -> Any:
    raise AssertionError("a concealer without an LM asked for one")


def test_the_registry_names_every_concealer_in_the_cli_order() -> None:
    assert PLC_CHOICES == ("lm", "repeat", "none") == tuple(CONCEALERS)
    assert [uses_lm(n) for n in PLC_CHOICES] == [True, False, False]
    assert isinstance(build_concealer("repeat", _no_lm), RepeatConcealer)
    assert isinstance(build_concealer("none"), SilenceConcealer)


def test_bad_requests_get_one_line_errors_naming_the_fix() -> None:
    with pytest.raises(ValueError, match=r"^--plc bogus: choose one of lm, repeat, none$"):
        build_concealer("bogus")
    with pytest.raises(ValueError, match="--adapter only applies with --plc lm"):
        build_concealer("repeat", adapter=lambda lm: lm)
    with pytest.raises(ValueError, match="--adapter only applies with --plc lm"):
        check_concealer("none", adapter=True)
    with pytest.raises(ValueError, match="needs a language model"):
        build_concealer("lm")
    check_concealer("lm", adapter=True)  # fine


def test_the_interface_is_declared_once_with_no_op_defaults() -> None:
    assert set(MEMBERS) == {n for n in dir(Concealer) if not n.startswith("_")}
    for name in ("repeat", "none"):
        c = build_concealer(name)
        assert c.observe_late(3, (1, 2)) is False
        assert c.reset(7) is None and c.prepare() is None and c.prepare(8, (1,)) is None and c.close() is None
        assert dict(c.timings_ms) == {}


def test_the_lm_concealers_write_every_member_with_the_interface_signature() -> None:
    from largesc_codec.batched.lm import BatchedStream
    from largesc_codec.neural.lm_concealer import LMConcealer

    for cls in (LMConcealer, BatchedStream):
        for name in MEMBERS:
            assert name in vars(cls), f"{cls.__name__}.{name} is inherited, not written"
            mine, spec = vars(cls)[name], vars(Concealer)[name]
            if isinstance(spec, property):
                assert isinstance(mine, property), (cls, name)
                continue
            assert list(inspect.signature(mine).parameters) == list(inspect.signature(spec).parameters), (cls, name)


def test_repeat_fades_a_burst_and_keeps_known_codebooks() -> None:
    c = RepeatConcealer()
    assert c.conceal(0, (), 4).gain == 0.0  # nothing played yet: silence
    c.observe(1, (5, 6, 7, 8))
    gains = [c.conceal(i, (), 4).gain for i in range(2, 6)]
    assert gains == [1.0, 1.0, 0.5, 0.25]
    assert c.conceal(6, (9,), 4).tokens == (9,)  # a partial frame plays what arrived ...
    assert c.conceal(7, (), 4).tokens == (9, 6, 7, 8)  # ... and is what a loss repeats next


def test_importing_the_registry_loads_no_torch() -> None:
    code = "import sys, largesc_codec.neural.concealers; print('torch' in sys.modules, 'moshi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.model
def test_the_lm_entry_builds_on_the_given_lm_and_adapter(models: Any) -> None:
    from largesc_codec.neural.lm_concealer import LMConcealer

    seen: list[Any] = []

    def adapter(lm: Any) -> Any:
        seen.append(lm)
        return lm

    c = build_concealer("lm", models.load_lm, adapter)
    try:
        assert isinstance(c, LMConcealer) and len(seen) == 1 and c.stepper.lm is seen[0]
        c.observe(0, (1, 2, 3, 4))
        c.prepare()
        assert set(c.timings_ms) >= {"prepare", "update", "speculate"} and c.timings_ms["prepare"]
    finally:
        c.close()
