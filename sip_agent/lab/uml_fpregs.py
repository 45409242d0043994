"""Make user-mode-linux 6.1 boot on hosts with a large XSAVE area (AVX-512, AMX).

Why. UML saves and restores its processes' FPU state through
``ptrace(PTRACE_GETREGSET/SETREGSET, NT_X86_XSTATE)`` with a buffer of the
size of an AVX-only XSAVE area (832 bytes) when the host has XSAVE. The host
kernel only accepts a SETREGSET of its whole XSAVE size, which is larger on a
CPU with AVX-512 or AMX, so UML's first switch to its init fails ("userspace -
ptrace set fp regs failed, errno = 14") and the kernel panics. Debian
bookworm's ``user-mode-linux`` (6.1) has this problem on such hosts.

What. A seccomp filter, installed in the child just before it execs
``linux.uml``, answers ``PTRACE_GETREGSET`` for ``NT_X86_XSTATE`` with EIO.
UML probes xstate support with exactly that call at boot, finds none, and
keeps its processes' state with ``PTRACE_GETFPREGS/SETFPREGS`` (the FXSAVE
area: x87 and SSE), which every x86-64 host accepts. Every other system call,
and ptrace with any other request, is untouched.

That area holds no AVX state, and UML loses a process's AVX registers at
every page fault it serves (the host resets them for the signal UML uses and
UML restores only what it saved): glibc's AVX string functions then compute
garbage (``insmod`` refused sch_netem.ko with EINVAL before any system call).
So UML's processes run with glibc's AVX variants switched off
(``INIT_ENV``: the kernel hands ``KEY=value`` boot parameters to init's
environment, and init's children inherit it). Its userspace is a shell, ``ip``,
``tc`` and ``insmod``: SSE2 is plenty.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

__all__ = ["INIT_ENV", "filter_program", "hide_xstate_from_ptrace"]

# glibc 2.36 feature names; unknown or absent ones are ignored, so this is safe on any x86-64 host.
INIT_ENV = ("GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX,-AVX2,-AVX512F,-AVX512BW,-AVX512VL,-AVX512DQ,-AVX512CD,-EVEX",)

_AUDIT_ARCH_X86_64 = 0xC000003E
_NR_PTRACE_X86_64 = 101
_PTRACE_GETREGSET = 0x4204
_NT_X86_XSTATE = 0x202
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_LD_W_ABS, _JEQ_K, _RET_K = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K
# struct seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8 i (low 32 bits first on x86-64)
_NR, _ARCH, _ARG0, _ARG2 = 0, 4, 16, 32


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def filter_program() -> bytes:
    """The classic-BPF seccomp program (8-byte instructions): EIO for ptrace(GETREGSET, *, NT_X86_XSTATE)."""
    return b"".join([
        _insn(_LD_W_ABS, _ARCH), _insn(_JEQ_K, _AUDIT_ARCH_X86_64, 0, 7),
        _insn(_LD_W_ABS, _NR), _insn(_JEQ_K, _NR_PTRACE_X86_64, 0, 5),
        _insn(_LD_W_ABS, _ARG0), _insn(_JEQ_K, _PTRACE_GETREGSET, 0, 3),
        _insn(_LD_W_ABS, _ARG2), _insn(_JEQ_K, _NT_X86_XSTATE, 0, 1),
        _insn(_RET_K, _RET_ERRNO | errno.EIO),
        _insn(_RET_K, _RET_ALLOW),
    ])


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def hide_xstate_from_ptrace() -> None:
    """Install the filter in this process (inherited by what it execs). A no-op off x86-64 Linux.

    Meant as ``subprocess.Popen(preexec_fn=...)``: it runs in the child between fork and exec.
    """
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    program = ctypes.create_string_buffer(filter_program())
    fprog = _SockFprog(len(program.raw) // 8, ctypes.cast(program, ctypes.c_void_p))
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
            libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"installing the seccomp filter for user-mode-linux failed: {os.strerror(err)}")
