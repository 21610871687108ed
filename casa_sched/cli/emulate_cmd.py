"""``casa emulate``: replay a trace against the function pods of a Kubernetes cluster.

Serves the emulated traffic's metrics (OpenFaaS gateway, Knative queue-proxy, cAdvisor formats)
on ``/metrics`` for Prometheus to scrape (:mod:`casa_sched.emulator`). Every flag, file, setting
and the cluster are checked before the replay starts: one line on stderr, exit 2 (bad input) or
1 (the cluster does not answer). Heavy imports happen when the command runs.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import typer

from casa_sched.cli.flags import Overrides, SettingFlag, configure_logging, flag, with_flags

_NAME = "casa emulate"

EMULATE_SETTINGS = (
    SettingFlag("workload.intensity"),
    SettingFlag("slo.laxity"),
    SettingFlag("planner.seed"),
    SettingFlag("clock.factor", "--clock-factor"),
)


@dataclass(frozen=True)
class EmulateInputs:
    """The flags of ``casa emulate`` that are not settings."""

    kubeconfig: Path | None = flag(None, "kubeconfig of the cluster; unset: in-cluster credentials.", exists=True)
    trace: Literal["synthetic", "azure2019"] = flag(
        "synthetic", "The embedded synthetic workload (no download) or the Azure Functions 2019 trace."
    )
    trace_dir: Path | None = flag(None, "Directory of the Azure Functions 2019 trace or its sample.", exists=True)
    trace_day: int | None = flag(None, "Day dNN of the public Azure trace.")
    functions: int | None = flag(None, "Keep a seeded random subset of this many functions.")
    epochs: int | None = flag(None, "Epochs to replay; unset: 16, or every epoch of a shorter trace.")
    ci_csv: Path | None = flag(None, "Hourly carbon intensity CSV (Electricity Maps export).", exists=True)
    price_csv: Path | None = flag(None, "Hourly price CSV (ISO, USD/MWh).", exists=True)
    start: str | None = flag(
        None, "Emulated local date-time of the trace's first minute, ISO 8601, on an epoch boundary; unset: "
        "clock.start_unix_s when set, else the next epoch boundary of the clock."
    )
    host: str = flag("127.0.0.1", "Address /metrics listens on.")
    port: int = flag(9110, "Port /metrics listens on.")
    formats: str = flag("openfaas,knative,cadvisor", "Comma-separated exposition formats to serve.")
    namespace_label: str = flag("default", "namespace_name of the Knative series.")
    results: Path | None = flag(None, "Append one JSON line per replayed epoch (the simulator's figures) here.")
    config: Path | None = flag(None, "YAML settings file; unset: $CASA_CONFIG, if set.", exists=True)
    log_level: str = flag("INFO", "Python log level.")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"{_NAME}: {message}", err=True)
    return typer.Exit(code)


@with_flags(EmulateInputs, EMULATE_SETTINGS)
def emulate_command(*, inputs: EmulateInputs, overrides: Overrides) -> None:
    """Replay a trace against the cluster's function pods and serve their metrics."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from casa_sched.emulator.exposition import FORMATS
    from casa_sched.settings import SettingsError, load_settings

    configure_logging(_NAME, inputs.log_level, stream=sys.stderr)
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    formats = tuple(f.strip() for f in inputs.formats.split(",") if f.strip())
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise _fail(f"--formats: unknown format {', '.join(bad) or '(none given)'}; known: {', '.join(FORMATS)}")
    from casa_sched.outputs import InputError, OutputError, check_output_file, input_file, one_line

    try:
        if inputs.kubeconfig is not None:
            input_file("--kubeconfig", inputs.kubeconfig)  # a FIFO would block the client's read
    except InputError as exc:
        raise _fail(str(exc)) from None
    if inputs.results is not None:
        try:
            check_output_file("--results", inputs.results)
            if inputs.results.exists() and not inputs.results.is_file():  # a FIFO would block the open
                raise OutputError(f"--results {inputs.results}: not a regular file, expected a JSON-lines file")
            inputs.results.open("a").close()
        except (OutputError, InputError) as exc:
            raise _fail(str(exc)) from None
        except OSError as exc:
            raise _fail(f"--results {inputs.results}: {exc.strerror or exc}") from None
    if not 0 <= inputs.port <= 65535:
        raise _fail(f"--port must be 0..65535, got {inputs.port}")
    values = dict(overrides.values)
    try:
        factor = values.get("clock.factor")
        if factor is not None and factor != 1.0:
            base = load_settings(inputs.config, {k: v for k, v in values.items() if k != "clock.factor"},
                                 flag_names=overrides.flag_names)  # fmt: skip
            if base.clock.origin_unix_s == 0.0:
                values["clock.origin_unix_s"] = time.time()  # this process starts the emulated clock
        settings = load_settings(inputs.config, values, flag_names=overrides.flag_names)
    except SettingsError as exc:
        raise _fail(str(exc)) from None

    from casa_sched.clock import Clock

    clock = Clock.from_settings(settings)
    epoch_s = settings.workload.epoch_s
    tz = ZoneInfo(settings.signals.timezone)
    if inputs.start is not None:
        try:
            local = datetime.fromisoformat(inputs.start)
        except ValueError:
            raise _fail(f"--start must be an ISO 8601 date-time such as 2024-07-10T08:00, got {inputs.start!r}") from None
        start_unix_s = (local.replace(tzinfo=tz) if local.tzinfo is None else local).timestamp()
    elif settings.clock.start_unix_s is not None:
        start_unix_s = settings.clock.start_unix_s
    else:
        start_unix_s = (clock.now() // epoch_s + 1) * epoch_s
    if abs(start_unix_s / epoch_s - round(start_unix_s / epoch_s)) > 1e-9:
        raise _fail(f"--start: the trace must start on an epoch boundary (a multiple of {epoch_s:g} s since the Unix "
                    f"epoch), got {datetime.fromtimestamp(start_unix_s, tz).isoformat()}")  # fmt: skip
    if settings.clock.factor != 1.0 and settings.clock.start_unix_s is None:
        values["clock.start_unix_s"] = start_unix_s
        settings = load_settings(inputs.config, values, flag_names=overrides.flag_names)
        clock = Clock.from_settings(settings)
    if clock.now() > start_unix_s + settings.simulation.autoscale_interval_s:
        raise _fail(f"--start {datetime.fromtimestamp(start_unix_s, tz).isoformat()} has passed on the clock "
                    f"(now {clock.now_datetime().astimezone(tz).isoformat()}): set a later --start or clock.start_unix_s")  # fmt: skip

    from casa_sched.experiments.inputs import ScenarioError, build_scenario

    try:
        scenario, meta = build_scenario(
            settings, trace=inputs.trace, trace_dir=inputs.trace_dir, trace_day=inputs.trace_day,
            functions=inputs.functions, epochs=inputs.epochs, ci_csv=inputs.ci_csv, price_csv=inputs.price_csv,
            start_local=datetime.fromtimestamp(start_unix_s, tz),
        )  # fmt: skip
    except (ScenarioError, ValueError) as exc:
        raise _fail(str(exc).replace("\n", " ")) from None

    from casa_sched.autoscaler.kubeapi import api_error, request_json
    from casa_sched.kube.client import load_api_client

    try:
        api = load_api_client(inputs.kubeconfig)
    except Exception as exc:  # kubernetes.config.ConfigException, OSError, YAML errors
        raise _fail(f"--kubeconfig {inputs.kubeconfig}: cannot load it ({type(exc).__name__}: {one_line(exc)})") from None
    if api is None:
        raise _fail("no cluster: pass --kubeconfig, or run inside a pod with a service account")
    try:
        nodes = request_json(api, "GET", "/api/v1/nodes").get("items") or []
    except Exception as exc:
        raise _fail(f"the API server does not answer: {api_error(exc, 'GET /api/v1/nodes')}", 1) from None

    from casa_sched.contract.cluster import SimParams
    from casa_sched.emulator.core import Emulation, EmulationError, epoch_record
    from casa_sched.emulator.process import Exporter, cluster_of, run, start_pod_watch

    try:
        cluster = cluster_of(nodes, settings, SimParams.from_settings(settings))
        emulation = Emulation(scenario, cluster)
    except (EmulationError, ValueError) as exc:
        raise _fail(str(exc)) from None
    emulation.warm_up()
    exporter = Exporter(emulation, formats, inputs.namespace_label, settings.clock.factor)
    exporter.refresh()
    try:
        server = exporter.serve(inputs.host, inputs.port)
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name longer than DNS allows
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise _fail(f"--port {inputs.port}: cannot listen on {inputs.host}: {why}", 1) from None
    store, reflector = start_pod_watch(api)
    log = logging.getLogger(__name__)
    c = settings.clock
    log.info("replaying %d epochs of %s (%d functions) from %s on %d nodes; metrics on http://%s:%d/metrics",
             scenario.epochs, meta["workload"], meta["functions"], datetime.fromtimestamp(start_unix_s, tz).isoformat(),
             len(cluster.nodes), inputs.host, server.server_address[1])  # fmt: skip
    if c.factor != 1.0:
        log.info("clock for the other components: CASA_CLOCK__FACTOR=%g CASA_CLOCK__ORIGIN_UNIX_S=%.3f "
                 "CASA_CLOCK__START_UNIX_S=%.0f", c.factor, c.origin_unix_s, clock.start_unix_s)  # fmt: skip
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    reflector.synced.wait(30.0)

    def on_window(w: Any) -> None:
        exporter.refresh()
        if emulation.next_window % emulation.windows_per_epoch == 0:
            e = emulation.epoch_results[-1]
            log.info("epoch %d: %d requests, SL_ave %.4f, %.2f g CO2, %d containers", e.epoch, e.requests,
                     e.slo_violation_rate, e.carbon_g, e.containers)  # fmt: skip
            if inputs.results is not None:
                import json

                with inputs.results.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(epoch_record(e)) + "\n")

    try:
        run(emulation, store.running, clock, start_unix_s, stop, on_window)
        if not stop.is_set():
            log.info("the trace has ended: serving its final counters until SIGTERM")
            stop.wait()
    finally:
        reflector.stop()
        server.shutdown()
