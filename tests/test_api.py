"""The packages' public API: every name in ``__all__`` resolves, and importing a package stays cheap.

Each top-level package keeps a table of its exports (``_EXPORTS``, module ->
names) that ``__getattr__`` imports on first use, and the same names in a
``TYPE_CHECKING`` block for type checkers; the table and the block must agree.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["largesc_codec", "rtp", "sip_agent"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_resolves(package: str) -> None:
    mod = importlib.import_module(package)
    assert mod.__all__, f"{package} exports nothing"
    assert len(set(mod.__all__)) == len(mod.__all__)
    for name in mod.__all__:
        value = getattr(mod, name)
        home = importlib.import_module(mod._HOME[name])
        assert value is getattr(home, name), f"{package}.{name} is not {home.__name__}.{name}"
        assert name in dir(mod)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        mod.no_such_name  # noqa: B018


def _type_checking_imports(package: str) -> dict[str, str]:
    """name -> module of the ``from M import N`` statements inside ``if TYPE_CHECKING:``."""
    tree = ast.parse((ROOT / package / "__init__.py").read_text())
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module, ast.dump(stmt)
                for alias in stmt.names:
                    assert alias.asname is None
                    found[alias.name] = stmt.module
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_export_table_matches_the_type_checking_imports(package: str) -> None:
    mod = importlib.import_module(package)
    assert _type_checking_imports(package) == mod._HOME
    assert sorted(mod._HOME) == mod.__all__


def _modules_after(code: str) -> set[str]:
    """Top-level module names in sys.modules after running ``code`` in a fresh interpreter."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, env=env, cwd=ROOT, timeout=120,
    ).stdout
    return {name.partition(".")[0] for name in json.loads(out.splitlines()[-1])}


def test_import_loads_no_heavy_dependency() -> None:
    heavy = {"torch", "moshi", "av", "pjsua2", "pyroute2"}
    loaded = _modules_after("import largesc_codec, rtp, sip_agent")
    assert not heavy & loaded
    # The pure parts of the API stay light too: value types, jitter buffer, channels, concealers, SDP.
    loaded = _modules_after(
        "from largesc_codec import TokenFrame, LossReport, JitterBuffer, parse_channel, CONCEALERS, LargeScParams\n"
        "from rtp import RtpSession, RtpPacket\nfrom sip_agent import AudioFiles"
    )
    assert not heavy & loaded


def test_touching_a_model_name_imports_torch() -> None:
    """The check above can fail: a name whose module needs torch does load it."""
    assert "torch" in _modules_after("import largesc_codec\nlargesc_codec.LargeSCSender")
    assert "pjsua2" in _modules_after("import sip_agent\nsip_agent.Agent")


def test_submodules_still_import_through_the_package() -> None:
    from rtp import sdp

    assert sdp.SessionDescription is importlib.import_module("rtp").SessionDescription


def test_docs_describe_every_export() -> None:
    """docs/api.md names every export of largesc_codec, and every ``lsc.NAME`` it uses exists."""
    import largesc_codec

    text = (ROOT / "docs" / "api.md").read_text()
    assert [n for n in largesc_codec.__all__ if not re.search(rf"\b{n}\b", text)] == []
    used = set(re.findall(r"\blsc\.([A-Za-z_][A-Za-z0-9_]*)", text)) - {"__all__"}
    assert used and used <= set(largesc_codec.__all__)
