"""The workload: per-minute invocation counts, T_ave and memory per function (docs/architecture.md "Models", workload).

A :class:`Workload` is a frozen snapshot of a trace (the Azure Functions 2019 trace, its
500-function sample, or the synthetic default). Everything here is a pure function of it:

- request intensity ``r_f`` per epoch (paper §III.B.1 looks at 15-minute epochs),
- the functions active in an epoch (the paper's Fig. 5b "unique function types"),
- intensity scaling by ``R×`` (paper §VI.A runs R = 5× .. 40× of the Azure trace),
- function subsets, and
- per-request arrival times for an epoch, which the request-level simulator replays.

Arrival times: the Azure trace only gives counts per minute, so requests of a (function,
minute) cell are placed independently and uniformly at random within that minute. This is the
standard assumption for minute-binned serverless traces (the trace's own authors and later
replayers such as vHive's In-Vitro do the same); it is a *modelling assumption*, not data.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from casa_sched._typing import FloatArray, IntArray

#: Default epoch length, minutes (paper §VI.A: decisions at the start of each 15-minute epoch).
DEFAULT_EPOCH_MIN = 15
#: Requests per block of functions drawn at once by :meth:`Workload.arrivals_by_function`.
BLOCK_REQUESTS = 1 << 24
#: Shortest T_ave, seconds. The Azure trace rounds averages to whole milliseconds, so a function
#: whose requests finish in under 0.5 ms reports "Average" 0 (13 of the 500 sample functions);
#: a zero execution time would make deadlines (laxity × T_ave) zero, so we floor at 1 ms.
MIN_T_AVE_S = 0.001

Seed = int | Sequence[int] | np.random.SeedSequence


class WorkloadError(ValueError):
    """An inconsistent workload or a bad argument to one of its methods; the message names it."""


def _frozen(array: npt.ArrayLike, dtype: type[np.generic]) -> npt.NDArray[np.generic]:
    out = np.array(array, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, slots=True)
class EpochArrivals:
    """All requests of one epoch in arrival order.

    ``times_s`` are seconds since the start of the workload (its first minute), sorted
    ascending; ``function_index[i]`` is the row (into ``Workload.function_ids``) of request i.
    The epoch covers ``[start_s, end_s)``.
    """

    epoch: int
    start_s: float
    end_s: float
    times_s: FloatArray
    function_index: npt.NDArray[np.int32]

    def __len__(self) -> int:
        return int(self.times_s.size)


@dataclass(frozen=True, eq=False)
class Workload:
    """Per-minute invocation counts and per-function properties of a serverless trace.

    Attributes:
        function_ids: one id per function (the Azure trace's HashFunction), unique.
        counts: invocations per function per minute, int64 ``[functions × minutes]``, read-only.
        start_minute: minute of the day of column 0 (the 500-function sample starts at 480 = 08:00).
        t_ave_s: average execution time T_ave per function, seconds (> 0; see MIN_T_AVE_S).
        memory_mb: memory per function, MB (the Azure trace measures it per application).
        triggers: trigger kind per function (http, timer, queue, event, storage,
            orchestration, others).
        source: a short human-readable description of where the workload came from.
    """

    function_ids: tuple[str, ...]
    counts: IntArray
    start_minute: int
    t_ave_s: FloatArray
    memory_mb: FloatArray
    triggers: tuple[str, ...]
    source: str = ""
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = tuple(str(f) for f in self.function_ids)
        counts = np.asarray(self.counts)
        if counts.ndim != 2:
            raise WorkloadError(f"counts must be 2-D [functions × minutes], got shape {counts.shape}")
        if (counts.size and not np.issubdtype(counts.dtype, np.integer)) and (
            not np.all(np.isfinite(counts)) or np.any(counts != np.round(counts))
        ):
            raise WorkloadError("counts must be whole numbers of invocations per minute")
        n = len(ids)
        if counts.shape[0] != n:
            raise WorkloadError(f"counts has {counts.shape[0]} rows but there are {n} function ids")
        if counts.size and int(counts.min()) < 0:
            row, col = np.unravel_index(int(np.argmin(counts)), counts.shape)
            raise WorkloadError(
                f"counts must be >= 0 invocations per minute; function {ids[row]!r} has "
                f"{int(counts[row, col])} at minute {self.start_minute + int(col)}"
            )
        index = {f: i for i, f in enumerate(ids)}
        if len(index) != n:
            dup = next(f for f in ids if ids.count(f) > 1)
            raise WorkloadError(f"function ids must be unique; {dup!r} appears more than once")
        t_ave = np.asarray(self.t_ave_s, dtype=np.float64)
        memory = np.asarray(self.memory_mb, dtype=np.float64)
        for name, arr in (("t_ave_s", t_ave), ("memory_mb", memory)):
            if arr.shape != (n,):
                raise WorkloadError(f"{name} must have one value per function ({n}), got shape {arr.shape}")
        if n and not (np.all(np.isfinite(t_ave)) and float(t_ave.min()) > 0.0):
            raise WorkloadError(f"t_ave_s must be finite and > 0 s, got minimum {float(t_ave.min())} s")
        if n and not (np.all(np.isfinite(memory)) and float(memory.min()) >= 0.0):
            raise WorkloadError(f"memory_mb must be finite and >= 0 MB, got minimum {float(memory.min())} MB")
        if len(self.triggers) != n:
            raise WorkloadError(f"triggers must have one entry per function ({n}), got {len(self.triggers)}")
        if self.start_minute < 0:
            raise WorkloadError(f"start_minute must be >= 0, got {self.start_minute}")
        object.__setattr__(self, "function_ids", ids)
        object.__setattr__(self, "counts", _frozen(counts, np.int64))
        object.__setattr__(self, "t_ave_s", _frozen(t_ave, np.float64))
        object.__setattr__(self, "memory_mb", _frozen(memory, np.float64))
        object.__setattr__(self, "triggers", tuple(str(t) for t in self.triggers))
        object.__setattr__(self, "start_minute", int(self.start_minute))
        object.__setattr__(self, "_index", index)

    # ---- shape -------------------------------------------------------------------------------

    @property
    def n_functions(self) -> int:
        return len(self.function_ids)

    @property
    def n_minutes(self) -> int:
        return int(self.counts.shape[1])

    @property
    def duration_s(self) -> float:
        """Length of the trace, seconds."""
        return 60.0 * self.n_minutes

    @property
    def total_invocations(self) -> int:
        return int(self.counts.sum())

    def totals(self) -> IntArray:
        """Invocations per function over the whole trace, int64 ``[functions]``."""
        out: IntArray = self.counts.sum(axis=1, dtype=np.int64)
        return out

    def index_of(self, function_id: str) -> int:
        """Row of ``function_id``; raises KeyError naming it when absent."""
        try:
            return self._index[function_id]
        except KeyError:
            raise KeyError(f"function {function_id!r} is not in this workload") from None

    def n_epochs(self, epoch_min: int = DEFAULT_EPOCH_MIN) -> int:
        """Number of epochs; a trailing partial epoch (if n_minutes % epoch_min ≠ 0) counts as one."""
        _check_epoch_min(epoch_min)
        return math.ceil(self.n_minutes / epoch_min)

    # ---- per-epoch views ----------------------------------------------------------------------

    def epoch_counts(self, epoch_min: int = DEFAULT_EPOCH_MIN) -> IntArray:
        """Requests per function per epoch, int64 ``[functions × epochs]`` (the paper's r_f,e)."""
        n_ep = self.n_epochs(epoch_min)
        padded = np.zeros((self.n_functions, n_ep * epoch_min), dtype=np.int64)
        padded[:, : self.n_minutes] = self.counts
        out: IntArray = padded.reshape(self.n_functions, n_ep, epoch_min).sum(axis=2, dtype=np.int64)
        return out

    def epoch_rate_per_s(self, epoch_min: int = DEFAULT_EPOCH_MIN) -> FloatArray:
        """Mean request rate per function per epoch, requests/s ``[functions × epochs]``.

        A trailing partial epoch is divided by its true length, not by ``epoch_min``.
        """
        counts = self.epoch_counts(epoch_min).astype(np.float64)
        lengths_min = np.full(counts.shape[1], float(epoch_min))
        if counts.shape[1]:
            lengths_min[-1] = self.n_minutes - (counts.shape[1] - 1) * epoch_min
        return counts / (60.0 * lengths_min)

    def active_mask(self, epoch_min: int = DEFAULT_EPOCH_MIN) -> npt.NDArray[np.bool_]:
        """Whether each function has ≥ 1 request in each epoch, ``[functions × epochs]``."""
        return self.epoch_counts(epoch_min) > 0

    def active_per_epoch(self, epoch_min: int = DEFAULT_EPOCH_MIN) -> IntArray:
        """Number of active functions in each epoch, int64 ``[epochs]``."""
        out: IntArray = self.active_mask(epoch_min).sum(axis=0, dtype=np.int64)
        return out

    def active_functions(self, epoch: int, epoch_min: int = DEFAULT_EPOCH_MIN) -> npt.NDArray[np.intp]:
        """Rows of the functions with ≥ 1 request in ``epoch`` (ascending)."""
        m0, m1 = self._epoch_minutes(epoch, epoch_min)
        return np.flatnonzero(self.counts[:, m0:m1].sum(axis=1) > 0)

    def busy_cores(self) -> FloatArray:
        """Cores busy per minute if every request holds one whole core for its T_ave ``[minutes]``.

        The calibration figure of docs/architecture.md "Models": Σ_f counts[f, t] · T_ave(f) / 60 s. Requests are charged
        to the minute they arrive in (long requests are not spread over later minutes), so the
        mean over the trace equals Σ requests · T_ave / trace length exactly.
        """
        return (self.t_ave_s @ self.counts.astype(np.float64)) / 60.0

    def mean_busy_cores(self) -> float:
        """Σ over requests of T_ave / trace length, cores (≈ 53 for the 500-function sample)."""
        if self.n_minutes == 0:
            return 0.0
        return float(self.t_ave_s @ self.totals().astype(np.float64) / self.duration_s)

    # ---- transformations (each returns a new Workload) ---------------------------------------

    def scaled(self, factor: float, seed: Seed = 0) -> Workload:
        """Request intensity × ``factor`` (the paper's R×), keeping counts integral.

        Rule: each cell c becomes floor(R·c) + Bernoulli(frac(R·c)), drawn independently per
        (function, minute) from ``numpy.random.default_rng(seed)``. The expectation is exactly
        R·c; an integral R·c is reproduced exactly (no randomness); a zero cell stays zero, so
        scaling never activates a function in a minute where it had no requests.
        """
        if not (math.isfinite(factor) and factor >= 0.0):
            raise WorkloadError(f"scale factor R must be a finite number >= 0, got {factor}")
        exact = self.counts.astype(np.float64) * factor
        if exact.size and float(exact.max()) >= 2.0**62:  # int64 counts would overflow
            raise WorkloadError(f"scale factor R = {factor:g} makes a minute's count overflow 64-bit integers")
        base = np.floor(exact)
        frac = exact - base
        out = base.astype(np.int64)
        if np.any(frac > 0.0):
            rng = np.random.default_rng(seed)
            out += rng.random(exact.shape) < frac
        return self._with(
            counts=out,
            source=f"{self.source} ×{factor:g}" if self.source else f"×{factor:g}",
        )

    def subset(self, rows: Iterable[int] | npt.NDArray[np.integer]) -> Workload:
        """The functions at ``rows`` (in that order)."""
        idx = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, dtype=np.intp)
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= self.n_functions):
            raise WorkloadError(f"function rows must be in 0..{self.n_functions - 1}")
        if np.unique(idx).size != idx.size:
            raise WorkloadError("function rows must not repeat")
        return Workload(
            function_ids=tuple(self.function_ids[i] for i in idx),
            counts=self.counts[idx],
            start_minute=self.start_minute,
            t_ave_s=self.t_ave_s[idx],
            memory_mb=self.memory_mb[idx],
            triggers=tuple(self.triggers[i] for i in idx),
            source=self.source,
        )

    def subset_ids(self, function_ids: Iterable[str]) -> Workload:
        """The named functions, in the given order; KeyError names the first unknown id."""
        return self.subset([self.index_of(f) for f in function_ids])

    def top_k(self, k: int) -> Workload:
        """The k functions with the most invocations (ties broken by row, so deterministic)."""
        _check_k(k, self.n_functions)
        order = np.argsort(-self.totals(), kind="stable")[:k]
        return self.subset(order)

    def random_subset(self, k: int, seed: Seed = 0) -> Workload:
        """k functions drawn uniformly without replacement (seeded), kept in their original order."""
        _check_k(k, self.n_functions)
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(self.n_functions, size=k, replace=False))
        return self.subset(rows)

    def window(self, first_minute: int, n_minutes: int) -> Workload:
        """Minutes ``first_minute .. first_minute + n_minutes - 1`` of the day (absolute minutes)."""
        lo = first_minute - self.start_minute
        if lo < 0 or n_minutes < 0 or lo + n_minutes > self.n_minutes:
            raise WorkloadError(
                f"window minutes {first_minute}..{first_minute + n_minutes - 1} outside the trace's "
                f"{self.start_minute}..{self.start_minute + self.n_minutes - 1}"
            )
        return self._with(counts=self.counts[:, lo : lo + n_minutes], start_minute=first_minute)

    # ---- arrivals ----------------------------------------------------------------------------

    def arrivals(self, epoch: int, seed: Seed = 0, epoch_min: int = DEFAULT_EPOCH_MIN) -> EpochArrivals:
        """All requests of ``epoch`` merged in time order (uniform within each minute; seeded).

        The generator is ``default_rng([seed, epoch])`` (for an int seed ≥ 0), so an epoch's
        arrivals do not depend on which other epochs were generated, or in which order.
        Ties between requests are impossible in practice (times have ~2⁻⁴⁰ min resolution) and
        are broken by function row.
        """
        m0, m1 = self._epoch_minutes(epoch, epoch_min)
        cells = np.ascontiguousarray(self.counts[:, m0:m1].T)  # minute-major [minutes × functions]
        keys, u_bits, _ = _sorted_keys(cells, minute_major=True, rng=_epoch_rng(seed, epoch))
        fn_bits = _bits(self.n_functions)
        fn = (keys & ((1 << fn_bits) - 1)).astype(np.int32)
        times_s = (keys >> fn_bits).astype(np.float64)
        times_s *= 60.0 / float(1 << u_bits)
        times_s += 60.0 * m0
        return EpochArrivals(
            epoch=epoch, start_s=60.0 * m0, end_s=60.0 * m1, times_s=times_s, function_index=fn
        )

    def arrivals_by_function(
        self, epoch: int, seed: Seed = 0, epoch_min: int = DEFAULT_EPOCH_MIN
    ) -> list[FloatArray]:
        """Sorted arrival times (s since the workload's start) of each function in ``epoch``.

        Same model and seeding rule as :meth:`arrivals`; the two give different times for one seed
        (they draw in a different order), each reproducible on its own.
        """
        m0, m1 = self._epoch_minutes(epoch, epoch_min)
        cells = self.counts[:, m0:m1]  # function-major
        rng = _epoch_rng(seed, epoch)
        per_function = cells.sum(axis=1)
        # Blocks of whole functions of at most BLOCK_REQUESTS requests each (one function may
        # exceed it alone): the key temporaries stay bounded while the result takes 8 B per
        # request. The offsets of a power-of-two range take one 64-bit draw each, so drawing
        # them block by block gives the same times as one draw over all functions.
        cum = np.cumsum(per_function)
        edges = [0]
        while edges[-1] < self.n_functions:
            done = int(cum[edges[-1] - 1]) if edges[-1] else 0
            nxt = int(np.searchsorted(cum, done + BLOCK_REQUESTS, side="right"))
            edges.append(min(max(nxt, edges[-1] + 1), self.n_functions))
        out: list[FloatArray] = []
        for lo, hi in itertools.pairwise(edges):
            block = cells[lo:hi]
            keys, u_bits, m_bits = _sorted_keys(block, minute_major=False, rng=rng, n_functions=self.n_functions)
            inner_bits = u_bits + m_bits
            times_s = (keys & ((1 << inner_bits) - 1)).astype(np.float64)
            del keys
            times_s *= 60.0 / float(1 << u_bits)
            times_s += 60.0 * m0
            bounds = np.concatenate(([0], np.cumsum(per_function[lo:hi])))
            out.extend(times_s[bounds[i] : bounds[i + 1]] for i in range(hi - lo))
        return out

    # ---- helpers -----------------------------------------------------------------------------

    def _epoch_minutes(self, epoch: int, epoch_min: int) -> tuple[int, int]:
        n_ep = self.n_epochs(epoch_min)
        if not 0 <= epoch < n_ep:
            raise WorkloadError(f"epoch must be in 0..{n_ep - 1} for {epoch_min}-minute epochs, got {epoch}")
        m0 = epoch * epoch_min
        return m0, min(m0 + epoch_min, self.n_minutes)

    def _with(self, *, counts: IntArray, start_minute: int | None = None, source: str | None = None) -> Workload:
        return Workload(
            function_ids=self.function_ids,
            counts=counts,
            start_minute=self.start_minute if start_minute is None else start_minute,
            t_ave_s=self.t_ave_s,
            memory_mb=self.memory_mb,
            triggers=self.triggers,
            source=self.source if source is None else source,
        )


def _check_epoch_min(epoch_min: int) -> None:
    if epoch_min < 1:
        raise WorkloadError(f"epoch length must be >= 1 minute, got {epoch_min} min")


def _check_k(k: int, n: int) -> None:
    if not 0 <= k <= n:
        raise WorkloadError(f"k must be in 0..{n} functions, got {k}")


def _epoch_rng(seed: Seed, epoch: int) -> np.random.Generator:
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, epoch)))
    if isinstance(seed, int):
        return np.random.default_rng([seed, epoch])
    return np.random.default_rng([*seed, epoch])


def _bits(n: int) -> int:
    """Bits needed to hold 0..n-1 (at least 1)."""
    return max(1, (n - 1).bit_length())


def _sorted_keys(
    cells: IntArray, *, minute_major: bool, rng: np.random.Generator, n_functions: int | None = None
) -> tuple[IntArray, int, int]:
    """Sorted int64 keys, one per request, with a uniform offset u of ``u_bits`` resolution.

    ``cells[a, b]`` requests are made for each cell. ``minute_major`` (cells are
    [minutes × functions]): key = minute | u | function, so the sort orders by time. Otherwise
    (cells are [functions × minutes]): key = function | minute | u, so the sort orders by
    function, then time. The minute and u together fit in 53 bits, so ``minute + u / 2**u_bits``
    converts to float64 exactly and never rounds up to the next minute. Returns the sorted keys,
    u_bits and the minute field's width. An int64 sort is several times faster than argsort on
    float times, which matters at ~2 M requests per epoch (R = 20). ``n_functions`` sizes the
    function field when ``cells`` is a block of a larger table (so the offsets keep the table's
    resolution).
    """
    n_a, n_b = cells.shape
    n_minutes, n_cell_functions = (n_a, n_b) if minute_major else (n_b, n_a)
    m_bits, f_bits = _bits(n_minutes), _bits(n_cell_functions if n_functions is None else n_functions)
    u_bits = min(63 - m_bits - f_bits, 53 - m_bits)
    if u_bits < 20:
        raise WorkloadError(
            f"too many functions ({n_functions}) × minutes ({n_minutes}) per epoch for 64-bit arrival keys"
        )
    flat = cells.ravel()
    cell = np.repeat(np.arange(flat.size, dtype=np.int64), flat)
    a = cell // n_b
    b = cell - a * n_b
    u = rng.integers(0, 1 << u_bits, size=cell.size, dtype=np.int64)
    keys: IntArray
    if minute_major:  # noqa: SIM108 — two bit layouts read better apart
        keys = (a << (u_bits + f_bits)) | (u << f_bits) | b
    else:
        keys = (a << (m_bits + u_bits)) | (b << u_bits) | u
    keys.sort()
    return keys, u_bits, m_bits
