"""The cold-request bench's sampling, statistics and rows (figures printed by `make bench`).

No timing is asserted: only which samples are taken and kept and how they are summarised. The
probe, which runs in an interpreter of its own, is tried in tests/bench/test_cold_probe.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.cold_start import (
    OURS,
    SEED,
    Baseline,
    Figures,
    Interpreter,
    Sample,
    compare,
    functions_from_template,
    goal_text,
    handler_rows,
    import_lines,
    import_summary,
    sampling_order,
    without_extension,
)


def test_rounds_alternate_which_side_goes_first_and_warm_up_rounds_come_first() -> None:
    assert sampling_order(3, warmup_rounds=1) == [
        (-1, OURS),
        (-1, SEED),
        (0, SEED),
        (0, OURS),
        (1, OURS),
        (1, SEED),
        (2, SEED),
        (2, OURS),
    ]


def test_compare_keeps_every_side_s_samples_but_the_warm_up_round() -> None:
    taken: list[tuple[int, str]] = []

    def measure(side: str, number: int) -> Sample:
        taken.append((number, side))
        return Sample(import_ms=number, call_ms=(1.0,))

    comparison = compare(measure, runs=4, warmup_rounds=1)

    assert taken == sampling_order(4, warmup_rounds=1)
    assert [s.import_ms for s in comparison.ours] == [0, 1, 2, 3]
    assert [s.import_ms for s in comparison.seed] == [0, 1, 2, 3]


def test_without_a_seed_only_our_side_is_sampled() -> None:
    comparison = compare(lambda side, number: Sample(1.0, (1.0,)), runs=2, with_seed=False)

    assert len(comparison.ours) == 2
    assert comparison.seed == []


def test_the_cold_request_is_the_import_plus_the_first_call_and_the_rest_are_warm() -> None:
    sample = Sample(import_ms=40.0, call_ms=(300.0, 0.2, 0.1))

    assert sample.cold_ms == 340.0
    assert sample.warm_ms == (0.2, 0.1)


def test_figures_are_medians_and_the_warm_p50_pools_every_warm_call() -> None:
    samples = [
        Sample(10.0, (100.0, 1.0, 1.0, 1.0)),
        Sample(30.0, (300.0, 5.0)),
        Sample(20.0, (200.0, 9.0)),
    ]

    figures = Figures.of(samples)

    assert figures.import_ms == 20.0
    assert figures.cold_ms == 220.0
    assert figures.cold_range == (110.0, 330.0)
    # Pooled: 1, 1, 1, 5, 9 -> 1; the median of each sample's median would say 5.
    assert figures.warm_p50_ms == 1.0
    assert (figures.samples, figures.warm_calls) == (3, 5)


def test_no_samples_is_an_error_not_a_figure() -> None:
    with pytest.raises(ValueError, match="no samples"):
        Figures.of([])


@pytest.mark.parametrize(
    ("value", "baseline", "goal", "text"),
    [
        (50.0, 100.0, 0.5, "<= 0.50x: met"),
        (51.0, 100.0, 0.5, "<= 0.50x: NOT met"),
        (120.0, 100.0, None, "reported"),
        (1.0, 0.0, 0.5, "reported"),
    ],
)
def test_goal_text(value: float, baseline: float, goal: float | None, text: str) -> None:
    assert goal_text(value, baseline, goal) == text


def test_a_handler_has_a_cold_request_headline_an_import_row_and_a_warm_row() -> None:
    ours = Figures(90.0, 430.0, 0.16, samples=15, warm_calls=150, cold_range=(401.2, 512.7))
    seed = Figures(300.0, 406.0, 14.5, samples=15, warm_calls=150, cold_range=(390, 450))
    baseline = Baseline("auth_lambda", "seed auth_lambda", ("jwt",), 0.5, 0.05)

    cold, imported, warm = handler_rows("cold request", "authorizer", "JWT", ours, seed, baseline)

    assert cold.metric.startswith("authorizer: cold request = import + first invocation (JWT)")
    assert (cold.value, cold.ratio, cold.goal) == ("430 ms (401-513)", "1.06x", "<= 0.50x: NOT met")
    assert cold.baseline == "406 ms (390-450), seed auth_lambda, alternating"
    assert (imported.value, imported.baseline, imported.goal) == ("90 ms", "300 ms", "reported")
    assert (warm.value, warm.baseline, warm.ratio) == ("0.16 ms", "14.5 ms", "0.01x")
    assert warm.goal == "<= 0.05x: met"


def test_a_handler_without_a_seed_counterpart_is_reported_without_a_ratio() -> None:
    ours = Figures(7.0, 7.2, 0.004, samples=3, warm_calls=9, cold_range=(7.1, 7.9))

    found = handler_rows("cold request", "run_summary", "counts", ours, None, None)

    assert [(r.baseline, r.ratio, r.goal) for r in found] == [
        ("no seed counterpart", "", "reported")
    ] * 3


IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       900 |        900 |   typing
cold-probe-phase import
import time:      2000 |       2000 |     jwt.api_jwt
import time:      1000 |       3000 |   jwt
import time:       500 |       3500 | entrix.tokens
cold-probe-phase first call
import time:     40000 |     150000 |     botocore.session
import time:     60000 |     210000 |   boto3.session
import time:     10000 |     250000 | boto3
profile of the first call:
cold-probe-phase done
"""


def test_importtime_lines_are_split_by_the_probe_s_phases() -> None:
    phases = import_lines(IMPORTTIME)

    assert [line.module for line in phases["before"]] == ["typing"]
    assert [(line.depth, line.module) for line in phases["import"]] == [
        (2, "jwt.api_jwt"),
        (1, "jwt"),
        (0, "entrix.tokens"),
    ]
    assert phases["first call"][-1].cumulative_us == 250_000


def test_import_summary_totals_top_level_imports_and_lists_the_heaviest_first() -> None:
    summary = import_summary(import_lines(IMPORTTIME)["first call"], depth=1)

    assert summary == ["250.0 ms of imports", "boto3: 250.0 ms", "  boto3.session: 210.0 ms"]


EXTENSION_LAYER = (
    "arn:aws:lambda:eu-west-1:015030872274:layer:"
    "AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:4"
)


def test_a_function_s_load_path_has_its_python_layers_but_not_the_extension_s(
    tmp_path: Path,
) -> None:
    """The extension's layer is an ARN with no Python code: the sample reaches it over loopback."""
    cdk_out, site_packages = tmp_path / "cdk.out", tmp_path / "site-packages"
    (cdk_out / "asset.code" / "entrix" / "handlers").mkdir(parents=True)
    (cdk_out / "asset.layer" / "python" / "jwt").mkdir(parents=True)
    (site_packages / "jwt").mkdir(parents=True)
    function = {
        "Handler": "entrix.handlers.authorizer.handler",
        "Code": {"S3Key": "code.zip"},
        "Layers": [{"Ref": "Layer"}, EXTENSION_LAYER],
    }
    template = {
        "Resources": {
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": function},
            "Layer": {
                "Type": "AWS::Lambda::LayerVersion",
                "Properties": {"Content": {"S3Key": "layer.zip"}},
            },
        }
    }
    (cdk_out / "Entrix.template.json").write_text(json.dumps(template))
    interpreter = Interpreter(sys.executable, "test", site_packages, tmp_path / "scratch")

    (load_path,) = functions_from_template(cdk_out, interpreter)

    assert load_path.name == "authorizer"
    assert load_path.paths[0] == str(cdk_out / "asset.code")
    assert len(load_path.paths) == 3  # the asset, the PyJWT layer, the runtime's boto3
    assert (Path(load_path.paths[1]) / "jwt").resolve() == (site_packages / "jwt").resolve()


def test_the_seed_s_environment_has_none_of_the_extension_s_variables() -> None:
    ours = {
        "JWT_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:key",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
        "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": "40123",
        "PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED": "false",
        "SECRETS_MANAGER_TTL": "300",
        "SSM_PARAMETER_STORE_TTL": "300",
        "AWS_SESSION_TOKEN": "local-token",
    }
    assert without_extension(ours) == {
        "JWT_SECRET_ARN": ours["JWT_SECRET_ARN"],
        "AWS_ENDPOINT_URL": ours["AWS_ENDPOINT_URL"],
    }
