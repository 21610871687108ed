"""Choosing a metrics source by settings: bad settings are one line and exit 2, before any cluster work."""

from __future__ import annotations

import pytest

from casa_sched.cli.main import main
from casa_sched.metricsources import SourceError, create_source
from casa_sched.metricsources.knative import KnativeSource
from casa_sched.metricsources.openfaas import OpenFaasSource
from casa_sched.metricsources.promql import PromqlSource
from casa_sched.settings import load_settings


@pytest.mark.parametrize(
    ("overrides", "kind"),
    [
        pytest.param({"forecast.source": "openfaas"}, OpenFaasSource, id="openfaas"),
        pytest.param({"forecast.source": "knative", "forecast.knative_generation": "opencensus"}, KnativeSource,
                     id="knative-pinned"),
        pytest.param({"forecast.source": "promql", "forecast.promql_requests_per_s": "sum by (fn) (rate(x[1m]))",
                      "forecast.promql_duration_s": "avg by (fn) (y)", "forecast.function_label": "fn"}, PromqlSource,
                     id="promql"),
    ],
)  # fmt: skip
def test_the_setting_picks_the_source_without_querying_prometheus(overrides, kind):
    # autoscaler.prometheus_url points at nothing: building a source must not need it
    src = create_source(
        load_settings(environ={}, overrides={"autoscaler.prometheus_url": "http://127.0.0.1:9", **overrides})
    )
    assert isinstance(src, kind)


def test_an_incomplete_promql_source_is_refused():
    with pytest.raises(SourceError, match="promql_requests_per_s"):
        create_source(load_settings(environ={}, overrides={"forecast.source": "promql"}))


def test_casa_autoscaler_refuses_it_with_one_line(capsys, monkeypatch):
    monkeypatch.setenv("CASA_FORECAST__SOURCE", "promql")
    with pytest.raises(SystemExit) as exit_:
        main(["autoscaler", "--once", "--dry-run"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert len(err.splitlines()) == 1
    assert "forecast.source=promql needs" in err
