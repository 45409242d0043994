"""SDP (RFC 8866) syntax: enough of v/o/s/c/b/t/m/a for audio offer/answer.

``parse`` reads a session description into frozen dataclasses and
``serialize`` writes it back with CRLF line ends. Lines i/u/e/p/k/r/z are
kept verbatim in ``extra``; any other line type, a line without ``=``, the
wrong order of v/o/s, or a malformed field raises ValueError naming the line
number and its text. Codec meaning (rtpmap, fmtp, offer/answer) lives in
``offer_answer``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

_KEPT = "iuepkrz"


@dataclass(frozen=True)
class Origin:
    """o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>"""

    username: str = "-"
    session_id: int = 0
    session_version: int = 0
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "127.0.0.1"


@dataclass(frozen=True)
class Connection:
    """c=<nettype> <addrtype> <address>"""

    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "127.0.0.1"


Attribute = tuple[str, "str | None"]


@dataclass(frozen=True)
class Media:
    """One m= section: ``formats`` are the payload type strings in preference order."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    connection: Connection | None = None
    bandwidths: tuple[tuple[str, int], ...] = ()
    attributes: tuple[Attribute, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()
    port_count: int | None = None

    def values(self, name: str) -> list[str]:
        """Values of every ``a=name:value`` (``""`` for a flag attribute)."""
        return [v or "" for n, v in self.attributes if n == name]

    def has(self, name: str) -> bool:
        return any(n == name for n, _ in self.attributes)


@dataclass(frozen=True)
class SessionDescription:
    """A whole SDP body."""

    origin: Origin = Origin()
    name: str = "-"
    connection: Connection | None = None
    timing: tuple[int, int] = (0, 0)
    media: tuple[Media, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    bandwidths: tuple[tuple[str, int], ...] = ()
    extra: tuple[tuple[str, str], ...] = field(default=())

    def with_media(self, media: tuple[Media, ...]) -> "SessionDescription":
        return replace(self, media=media)


class _Line:
    def __init__(self, number: int, text: str) -> None:
        self.number, self.text = number, text
        if len(text) < 2 or text[1] != "=" or not text[0].islower():
            self.fail("expected '<letter>=<value>'")
        self.kind, self.value = text[0], text[2:]

    def fail(self, why: str) -> None:
        raise ValueError(f"SDP line {self.number} {self.text!r}: {why}")

    def fields(self, count: int | None = None, at_least: int | None = None) -> list[str]:
        parts = self.value.split()
        if count is not None and len(parts) != count:
            self.fail(f"expected {count} fields, got {len(parts)}")
        if at_least is not None and len(parts) < at_least:
            self.fail(f"expected at least {at_least} fields, got {len(parts)}")
        return parts

    def integer(self, text: str, what: str, low: int = 0, high: int | None = None) -> int:
        if not text.isdigit():
            self.fail(f"{what} {text!r} is not a non-negative integer")
        value = int(text)
        if value < low or (high is not None and value > high):
            self.fail(f"{what} {value} is outside {low}..{high}")
        return value


def _connection(line: _Line) -> Connection:
    net, addrtype, address = line.fields(3)
    return Connection(net, addrtype, address)


def _bandwidth(line: _Line) -> tuple[str, int]:
    kind, sep, value = line.value.partition(":")
    if not sep or not kind:
        line.fail("expected b=<type>:<bandwidth>")
    return kind, line.integer(value, "bandwidth")


def _attribute(line: _Line) -> Attribute:
    name, sep, value = line.value.partition(":")
    if not name or " " in name:
        line.fail("expected a=<name>[:<value>]")
    return (name, value if sep else None)


def _media(line: _Line) -> Media:
    parts = line.fields(at_least=3)
    port_text, _, count_text = parts[1].partition("/")
    port = line.integer(port_text, "port", 0, 65535)
    count = line.integer(count_text, "port count", 1) if count_text else None
    formats = tuple(parts[3:])
    if not formats and port:
        line.fail("an active m= line needs at least one format")
    return Media(parts[0], port, parts[2], formats, port_count=count)


def parse(text: str) -> SessionDescription:
    """Parse an SDP body (CRLF or LF line ends); ValueError names the bad line."""
    lines = [_Line(i + 1, raw.rstrip("\r")) for i, raw in enumerate(text.split("\n")) if raw.strip()]
    if len(lines) < 3 or lines[0].text != "v=0":
        raise ValueError("SDP must start with 'v=0' followed by o= and s= lines")
    if lines[1].kind != "o" or lines[2].kind != "s":
        bad = lines[1] if lines[1].kind != "o" else lines[2]
        bad.fail("the second and third lines must be o= and s=")
    o = lines[1].fields(6)
    origin = Origin(
        o[0], lines[1].integer(o[1], "session id"), lines[1].integer(o[2], "session version"), o[3], o[4], o[5]
    )
    session: dict[str, object] = {"origin": origin, "name": lines[2].value}
    attrs: list[Attribute] = []
    bws: list[tuple[str, int]] = []
    extra: list[tuple[str, str]] = []
    media: list[Media] = []
    current: dict[str, list[Any]] | None = None  # the m= section being read
    head: Media | None = None

    def close() -> None:
        if head is not None and current is not None:
            media.append(
                replace(
                    head,
                    connection=current["c"][0] if current["c"] else None,
                    bandwidths=tuple(current["b"]),
                    attributes=tuple(current["a"]),
                    extra=tuple(current["x"]),
                )
            )

    for line in lines[3:]:
        if line.kind == "m":
            close()
            head, current = _media(line), {"c": [], "b": [], "a": [], "x": []}
        elif line.kind in "vos":
            line.fail(f"{line.kind}= may appear only once, at the top")
        elif line.kind == "c":
            if current is None:
                session["connection"] = _connection(line)
            elif current["c"]:
                line.fail("a media section has at most one c= line")
            else:
                current["c"].append(_connection(line))
        elif line.kind == "b":
            (bws if current is None else current["b"]).append(_bandwidth(line))
        elif line.kind == "t":
            start, stop = line.fields(2)
            session["timing"] = (line.integer(start, "start time"), line.integer(stop, "stop time"))
        elif line.kind == "a":
            (attrs if current is None else current["a"]).append(_attribute(line))
        elif line.kind in _KEPT:
            (extra if current is None else current["x"]).append((line.kind, line.value))
        else:
            line.fail(f"unknown line type {line.kind!r}")
    close()
    return SessionDescription(
        media=tuple(media), attributes=tuple(attrs), bandwidths=tuple(bws), extra=tuple(extra), **session  # type: ignore[arg-type]
    )


def _attr_lines(attributes: tuple[Attribute, ...]) -> list[str]:
    return [f"a={n}" if v is None else f"a={n}:{v}" for n, v in attributes]


def serialize(sd: SessionDescription) -> str:
    """SDP text with CRLF line ends; ``parse(serialize(sd)) == sd``."""
    o = sd.origin
    out = [
        "v=0",
        f"o={o.username} {o.session_id} {o.session_version} {o.nettype} {o.addrtype} {o.address}",
        f"s={sd.name}",
    ]
    out += [f"{k}={v}" for k, v in sd.extra if k in "iue p"]
    if sd.connection is not None:
        c = sd.connection
        out.append(f"c={c.nettype} {c.addrtype} {c.address}")
    out += [f"b={k}:{v}" for k, v in sd.bandwidths]
    out.append(f"t={sd.timing[0]} {sd.timing[1]}")
    out += [f"{k}={v}" for k, v in sd.extra if k not in "iue p"]
    out += _attr_lines(sd.attributes)
    for m in sd.media:
        port = f"{m.port}/{m.port_count}" if m.port_count is not None else str(m.port)
        out.append(" ".join([f"m={m.media}", port, m.proto, *m.formats]))
        out += [f"{k}={v}" for k, v in m.extra]
        if m.connection is not None:
            c = m.connection
            out.append(f"c={c.nettype} {c.addrtype} {c.address}")
        out += [f"b={k}:{v}" for k, v in m.bandwidths]
        out += _attr_lines(m.attributes)
    return "\r\n".join(out) + "\r\n"
