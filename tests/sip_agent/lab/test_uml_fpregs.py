"""The seccomp filter that lets user-mode-linux 6.1 boot on AVX-512/AMX hosts (sip_agent/lab/uml_fpregs.py)."""

from __future__ import annotations

import platform
import struct
import subprocess
import sys

import pytest

from sip_agent.lab.uml_fpregs import INIT_ENV, filter_program, hide_xstate_from_ptrace

# ptrace(request, pid 0x7fffffff (no such process), NT_X86_XSTATE or NT_PRSTATUS, NULL): errno of each
_PROBE = """
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
out = []
for request, note in ((0x4204, 0x202), (0x4204, 1), (0x4205, 0x202)):
    ctypes.set_errno(0)
    libc.ptrace(ctypes.c_long(request), ctypes.c_long(0x7FFFFFFF), ctypes.c_void_p(note), ctypes.c_void_p(0))
    out.append(errno.errorcode.get(ctypes.get_errno(), "0"))
print(" ".join(out))
"""


def test_program_is_well_formed() -> None:
    prog = filter_program()
    assert len(prog) % 8 == 0 and len(prog) // 8 == 10
    insns = [struct.unpack("HBBI", prog[i:i + 8]) for i in range(0, len(prog), 8)]
    for n, (code, jt, jf, _) in enumerate(insns):
        if code == 0x15:  # conditional jumps stay inside the program and end on a return
            assert n + 1 + max(jt, jf) < len(insns)
    assert insns[-1] == (0x06, 0, 0, 0x7FFF0000)  # default: allow
    assert insns[-2] == (0x06, 0, 0, 0x00050000 | 5)  # the matched call: EIO
    assert all(e.startswith("GLIBC_TUNABLES=glibc.cpu.hwcaps=") and "-AVX2" in e for e in INIT_ENV)


@pytest.mark.skipif(platform.system() != "Linux" or platform.machine() != "x86_64", reason="x86-64 Linux seccomp")
def test_only_getregset_of_the_xstate_note_is_refused() -> None:
    plain = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True).stdout.split()
    filtered = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True,
                              preexec_fn=hide_xstate_from_ptrace).stdout.split()
    assert plain == ["ESRCH"] * 3  # no such process: the kernel looked at the call
    assert filtered == ["EIO", "ESRCH", "ESRCH"]  # GETREGSET/XSTATE refused; other notes, SETREGSET untouched
