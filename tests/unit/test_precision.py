"""The precision contexts and ``benchmarks/precision.py`` in its CI-sized form (a tiny BERT, CPU autocast)."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from advtrain import device

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "precision.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("precision_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tf32_context_restores_the_matmul_setting():
    before = torch.get_float32_matmul_precision()
    with device.precision_context("tf32"):
        assert torch.get_float32_matmul_precision() == "high"
    assert torch.get_float32_matmul_precision() == before


def test_half_precision_context_autocasts_on_cpu():
    a = torch.randn(4, 4)
    with device.precision_context("bf16", device_type="cpu"):
        assert (a @ a).dtype == torch.bfloat16
    with device.precision_context("fp32", device_type="cpu"):
        assert (a @ a).dtype == torch.float32


def test_unknown_precision_is_an_error():
    with pytest.raises(ValueError, match="precision: 'fp8'"):
        with device.precision_context("fp8"):
            pass


def test_precision_benchmark_ci_sized(tmp_path):
    benchmark = load_benchmark()
    out = tmp_path / "precision.json"
    result = benchmark.main(["--tiny", "--device", "cpu", "--examples", "8", "--lengths", "16", "24",
                             "--repeats", "1", "--json", str(out)])
    assert json.loads(out.read_text())["rows"] == result["rows"]
    cells = {(r["method"], r["length"], r["precision"]): r for r in result["rows"]}
    assert set(cells) == {(m, n, p) for m in ("pgd", "lds", "alum") for n in (16, 24) for p in ("fp32", "bf16", "fp16")}
    for (method, length, precision), row in cells.items():
        assert row["step_ms"] > 0 and row["clean_step_ms"] > 0
        assert row["effect_rms"] > 0, (method, length)  # delta moves the margins
        if precision == "fp32":  # fp32 against itself: the same draws give the same delta and margins
            assert row["margin_corr"] == pytest.approx(1.0) and row["delta_cos"] == pytest.approx(1.0)
            assert row["rounding_rms"] == 0
        else:
            assert row["rounding_rms"] > 0  # half precision rounds the clean margins
    assert result["meets_target"]["fp32"] is True


def test_head_gives_every_example_a_positive_margin():
    benchmark = load_benchmark()
    args = benchmark.parse_args(["--tiny", "--device", "cpu"])
    model, tokenizer, _ = benchmark.load_model(args)
    generator = torch.Generator().manual_seed(0)
    ids = benchmark.sequences(args, model, tokenizer, 16, 8, generator)
    assert ids.shape == (8, 16)
    labels = benchmark.fit_head(model, ids, generator)
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    assert (benchmark.margins(logits, labels) > 0).all()


# --------------------------------------------------------------------------- the ledger row `precision`
@pytest.fixture()
def study():
    import yaml
    from conftest import REPO

    return yaml.safe_load((REPO / "config.yaml").read_text())


def precision_uses(config):
    from advtrain import fidelity

    return [(u.key, u.value, u.reference) for u in fidelity.row("precision").uses(config)]


def test_the_study_runs_in_fp32(study):
    assert study["model"]["precision"] == "auto"
    assert precision_uses(study) == []


def test_half_precision_is_listed_with_its_key(study):
    study["model"]["precision"] = "bf16"
    assert ("model.precision", "bf16", "fp32") in precision_uses(study)
    study["model"]["precision"] = "fp32"
    study["methods"]["PGD-AT"].setdefault("train", {})["precision"] = "tf32"
    assert precision_uses(study) == [("methods.PGD-AT.train.precision", "tf32", "fp32")]


def test_auto_is_fp32_on_a_gpu_too():
    from advtrain.config import resolve_precision

    assert resolve_precision("auto", cuda_available=True, bf16_supported=True) == "fp32"
