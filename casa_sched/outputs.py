"""Checked inputs and atomic output sets for the command-line tools (``casa``, ``casa-profiler``).

Every CLI checks its numbers, input files and output paths before any long work starts
(:func:`finite`, :func:`input_file`, :func:`check_output_dir`, :func:`check_output_file`), then
writes its outputs as one set (:class:`OutputSet`): each file goes to a temporary file in its own
directory first, and only when every file of the set is written are they moved into place with
``os.replace``. A run that fails (an exception, Ctrl-C, SIGTERM) while writing removes its
temporary files and leaves the previous set untouched. ``os.replace`` replaces a symlink at the
destination by the new file; it never writes through the link to its target.

JSON is strict (``allow_nan=False``): a NaN or infinity in an output is refused, never written
as the non-JSON tokens ``NaN``/``Infinity``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any


class InputError(ValueError):
    """A flag or input file that is not acceptable; the message names it and what was expected."""


class OutputError(OSError):
    """An output path that cannot be written; the message names it and why."""


def finite(flag: str, value: float, *, low: float | None = None, high: float | None = None,
           low_open: bool = False) -> float:  # fmt: skip
    """``value`` when it is a finite number in [low, high] (``low_open``: (low, high]); else InputError."""
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    want = f"a finite number in {'(' if low_open else '['}{lo}, {hi}]"
    if not math.isfinite(value):
        raise InputError(f"{flag} must be {want}, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise InputError(f"{flag} must be {want}, got {value:g}")
    if high is not None and value > high:
        raise InputError(f"{flag} must be {want}, got {value:g}")
    return value


def input_file(flag: str, path: Path) -> Path:
    """``path`` when it names an existing, readable regular file; else InputError saying what it is."""
    if not path.exists():
        raise InputError(f"{flag} {path}: no such file")
    if path.is_dir():
        raise InputError(f"{flag} {path}: is a directory, expected a file")
    if not path.is_file():
        raise InputError(f"{flag} {path}: not a regular file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot be read ({exc.strerror})") from None
    return path


def read_text(flag: str, path: Path) -> str:
    """The UTF-8 text of an input file; InputError naming the flag for a missing, binary or unreadable file."""
    input_file(flag, path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{flag} {path}: not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})") from None
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot be read ({exc.strerror})") from None
    if "\x00" in text:
        raise InputError(f"{flag} {path}: a binary file (NUL byte), expected text")
    return text


def refuse_json_constant(token: str) -> float:
    """``parse_constant`` for ``json.loads``, which accepts NaN and ±Infinity; JSON (RFC 8259) does not."""
    raise ValueError(f"{token} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of the range of a number")
    return value


def parse_json(where: str, text: str | bytes) -> Any:
    """Strict JSON (no NaN, Infinity or numbers that overflow to them); InputError naming
    ``where`` for text that is not JSON or nests too deeply to parse."""
    try:
        return json.loads(text, parse_constant=refuse_json_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise InputError(f"{where}: not JSON this parser accepts (nested too deeply)") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    except ValueError as exc:  # from refuse_json_constant / _finite_float
        raise InputError(f"{where}: {exc}") from None


def read_json(flag: str, path: Path) -> Any:
    """The strict JSON document in ``path`` (:func:`read_text`, :func:`parse_json`); InputError."""
    return parse_json(f"{flag} {path}", read_text(flag, path))


def _probe_dir(flag: str, directory: Path) -> None:
    """Create and remove a file in ``directory``: the only writability test that is true for root too."""
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".casa-probe-")
    except OSError as exc:
        raise OutputError(f"{flag} {directory}: directory is not writable ({exc.strerror})") from None
    os.close(fd)
    os.unlink(tmp)


def check_output_dir(flag: str, directory: Path) -> Path:
    """``directory`` exists (created if need be) and accepts new files; else OutputError."""
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"{flag} {directory}: exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{flag} {directory}: cannot create the directory ({exc.strerror})") from None
    _probe_dir(flag, directory)
    return directory


def check_output_file(flag: str, path: Path, suffixes: tuple[str, ...] | None = None) -> Path:
    """``path`` can be (re)placed: its directory accepts files, it is not a directory, and its
    suffix is one of ``suffixes`` when given; else OutputError (InputError for the suffix)."""
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise InputError(
            f"{flag} {path}: unsupported file type {path.suffix or '(none)'!r}; expected {', '.join(suffixes)}"
        )
    if path.is_dir():
        raise OutputError(f"{flag} {path}: is a directory, expected a file path")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"{flag} {path}: {parent} is not a directory")
    check_output_dir(flag, parent)
    return path


def http_url(text: str) -> bool:
    """True when ``text`` is an http(s) URL with a host (``http://`` alone or ``http://[::1`` is not)."""
    from urllib.parse import urlsplit

    try:
        url = urlsplit(text)
        return url.scheme in ("http", "https") and bool(url.hostname) and (url.port is None or url.port > 0)
    except ValueError:  # an unclosed IPv6 bracket, a port that is not a number or out of range
        return False


def one_line(text: object) -> str:
    """``text`` (an exception's message, say) on one line: newlines and runs of blanks become one space."""
    return " ".join(str(text).split())


def json_text(obj: Any, **kwargs: Any) -> str:
    """Strict JSON (no NaN/Infinity), newline-terminated; ValueError names the offending value."""
    return json.dumps(obj, allow_nan=False, **kwargs) + "\n"


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM received inside the block are delivered when it ends (main thread only:
    Python runs signal handlers there; elsewhere this does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum)) for sig in _DEFERRED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in received:
            signal.raise_signal(signum)


_DEFERRED = (signal.SIGINT, signal.SIGTERM)


class OutputSet:
    """Files written together: all or none replace their previous versions.

    ``with OutputSet() as out:`` then ``out.write_text(path, text)`` / ``out.write_bytes`` or
    ``out.temp_path(path)`` (a temporary path with the same suffix, for writers that take a path,
    e.g. matplotlib's ``savefig``). Leaving the block normally moves every file into place
    (``os.replace``, in the order given); leaving it by an exception removes every temporary
    file and replaces nothing.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []  # (temporary, final)
        self.paths: list[Path] = []

    def __enter__(self) -> OutputSet:
        return self

    def temp_path(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
        os.close(fd)
        self._pending.append((Path(tmp), path))
        return Path(tmp)

    def write_bytes(self, path: Path, data: bytes) -> Path:
        tmp = self.temp_path(path)
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return path

    def write_text(self, path: Path, text: str) -> Path:
        return self.write_bytes(path, text.encode("utf-8"))

    def _discard(self) -> None:
        for tmp, _ in self._pending:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._pending.clear()

    def commit(self) -> list[Path]:
        try:
            for tmp, final in self._pending:
                os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the outputs from other users
                if final.is_dir() and not final.is_symlink():
                    raise OutputError(f"{final}: is a directory, expected a file path")
            with _signals_deferred():  # a Ctrl-C between two replaces would leave half a set
                for tmp, final in self._pending:
                    os.replace(tmp, final)
                    self.paths.append(final)
        except OSError as exc:
            raise OutputError(f"cannot write {exc.filename or 'the outputs'}: {exc.strerror or exc}") from None
        finally:
            self._discard()
        return self.paths

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        if exc_type is None:
            self.commit()
        else:
            self._discard()
