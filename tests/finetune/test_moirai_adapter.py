"""Moirai through uni2ts, on a tiny random-init model (no hub access needed)."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("uni2ts")

from hdt_finetune.finetune.model_source import ModelUnavailableError  # noqa: E402
from hdt_finetune.finetune.moirai.moirai_adapter import MoiraiAdapter  # noqa: E402
from hdt_finetune.finetune.moirai.moirai_weights import (  # noqa: E402
    MoiraiSpec,
    load_moirai,
    random_moirai,
)
from hdt_finetune.finetune.uni2ts_compat import import_uni2ts  # noqa: E402

torch.set_num_threads(1)


def sine_windows(batch: int, context: int, horizon: int, seed: int = 0):
    """Sines of random phase, period and level: [batch, context], [batch, horizon]."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(context + horizon, dtype=torch.float32)
    phase = torch.rand(batch, 1, generator=gen) * 2 * math.pi
    period = 12 + 12 * torch.rand(batch, 1, generator=gen)
    level = 5 * torch.randn(batch, 1, generator=gen)
    series = level + 2 * torch.sin(2 * math.pi * t / period + phase)
    series = series + 0.05 * torch.randn(series.shape, generator=gen)
    return series[:, :context], series[:, context:]


@pytest.fixture(scope="module")
def tiny():
    return random_moirai("tiny", seed=0)


def test_packed_inputs_match_uni2ts_layout_for_ragged_lengths(tiny):
    context_length, horizon, patch = 100, 20, 32  # neither a multiple of the patch size
    adapter = MoiraiAdapter(tiny, context_length=context_length, horizon=horizon, patch_size=patch)
    context, target = sine_windows(3, context_length, horizon)
    batch = adapter.pack(context.unsqueeze(-1), target)  # [B, L, 1] accepted

    tokens = math.ceil(100 / 32) + math.ceil(20 / 32)
    assert batch.target.shape == batch.observed_mask.shape == (3, tokens, 128)
    for ids in (batch.sample_id, batch.time_id, batch.variate_id, batch.prediction_mask):
        assert ids.shape == (3, tokens)
    assert batch.prediction_mask[0].tolist() == [False] * 4 + [True]
    # 28 front-padding steps and the 12 steps rounding the horizon up are unobserved.
    assert not batch.observed_mask[:, 0, :28].any() and batch.observed_mask[:, 0, 28:32].all()
    assert batch.observed_mask[:, 4, :20].all() and not batch.observed_mask[:, 4, 20:].any()
    assert not batch.observed_mask[..., patch:].any()
    assert torch.equal(batch.target[:, 1, :patch], context[:, 4:36])

    # Same tensors as uni2ts's own packing for fixed-patch-size forecasting.
    import_uni2ts()  # shims first
    from uni2ts.model.moirai import MoiraiForecast

    reference = MoiraiForecast(
        prediction_length=horizon,
        target_dim=1,
        feat_dynamic_real_dim=0,
        past_feat_dynamic_real_dim=0,
        context_length=context_length,
        module=tiny.module,
        patch_size=patch,
    )._convert(
        patch,
        context.unsqueeze(-1),
        torch.ones(3, context_length, 1, dtype=torch.bool),
        torch.zeros(3, context_length, dtype=torch.bool),
        future_target=target.unsqueeze(-1),
        future_observed_target=torch.ones(3, horizon, 1, dtype=torch.bool),
        future_is_pad=torch.zeros(3, horizon, dtype=torch.long),
    )
    ours = (batch.target, batch.observed_mask, batch.sample_id, batch.time_id)
    ours += (batch.variate_id, batch.prediction_mask)
    for mine, theirs in zip(ours, reference, strict=True):
        assert torch.equal(mine, theirs.to(mine.dtype))


def test_forecast_distribution_equals_the_full_forward_on_the_horizon(tiny):
    adapter = MoiraiAdapter(tiny, context_length=100, horizon=20, patch_size=32)
    batch = adapter.pack(*sine_windows(3, 100, 20))
    with torch.no_grad():
        full = tiny.module(**batch.module_inputs())  # MoiraiModule.forward: [B, S, max_patch]
        fast = adapter.forecast_distribution(tiny.module, batch)  # horizon tokens: [B, 1, 32]
    assert fast.batch_shape == (3, 1, 32)
    for stat in ("mean", "stddev"):
        expected = getattr(full, stat)[:, 4:, :32]
        torch.testing.assert_close(getattr(fast, stat), expected)
    assert torch.isfinite(fast.mean).all()


def test_forecast_shapes_and_missing_values(tiny):
    adapter = MoiraiAdapter(tiny, context_length=100, horizon=20, patch_size=32)
    context, _ = sine_windows(3, 100, 20)
    context[1, 50:60] = float("nan")
    assert adapter.point_forecast(tiny.module, context).shape == (3, 20)
    samples = adapter.sample_forecast(tiny.module, context, num_samples=5)
    assert samples.shape == (5, 3, 20) and torch.isfinite(samples).all()
    observed = adapter.pack(context).observed_mask  # steps 50-59 -> token 2
    assert not observed[1, 2, 14:24].any() and observed[1, 2, 13] and observed[1, 2, 24]
    with pytest.raises(ValueError, match="expects 100"):
        adapter.pack(context[:, :64])


def test_loss_is_uni2ts_nll_and_training_lowers_it():
    loaded = random_moirai("tiny", seed=1)
    adapter = MoiraiAdapter(loaded, context_length=64, horizon=32, patch_size=16)
    context, target = sine_windows(16, 64, 32, seed=1)

    batch = adapter.pack(context, target)
    loss = adapter.loss(loaded.module, context, target)
    assert loss.ndim == 0 and torch.isfinite(loss)
    from uni2ts.model.moirai.forecast import SampleNLLLoss

    per_window = SampleNLLLoss()(
        pred=loaded.module(**batch.module_inputs()),
        target=batch.target,
        prediction_mask=batch.prediction_mask,
        observed_mask=batch.observed_mask,
        sample_id=batch.sample_id,
        variate_id=batch.variate_id,
    )
    assert per_window.shape == (16,)
    torch.testing.assert_close(loss, per_window.mean())

    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(loaded.module.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        step_loss = adapter.loss(loaded.module, context, target)
        step_loss.backward()
        optimizer.step()
        losses.append(step_loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 0.5, losses


def test_save_and_load_round_trip(tiny, tmp_path):
    adapter = MoiraiAdapter(tiny, context_length=96, horizon=24, patch_size=32)
    folder = tmp_path / "moirai"
    adapter.save_pretrained(tiny.module, folder)
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()

    loaded = load_moirai(folder)
    assert loaded.weights == str(folder.resolve()) and tiny.weights == "random-init"
    assert loaded.size == "tiny"
    original, restored = tiny.module.state_dict(), loaded.module.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)

    twin = MoiraiAdapter(loaded, context_length=96, horizon=24, patch_size=32)
    tiny.module.eval()
    loaded.module.eval()
    context, _ = sine_windows(4, 96, 24)
    torch.manual_seed(123)
    first = adapter.point_forecast(tiny.module, context)
    torch.manual_seed(123)
    second = twin.point_forecast(loaded.module, context)
    assert torch.equal(first, second)


def test_offline_hub_id_gives_actionable_error(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # empty cache
    with pytest.raises(ModelUnavailableError) as info:
        load_moirai(MoiraiSpec(size="small", context_length=512, horizon=96).hub_id)
    message = str(info.value)
    assert "Salesforce/moirai-1.1-R-small" in message
    assert "folder" in message and "model.init=random" in message
    assert info.value.__cause__ is None  # no chained huggingface_hub traceback


def test_folder_without_weights_is_refused(tmp_path):
    with pytest.raises(ModelUnavailableError, match="model.safetensors"):
        load_moirai(tmp_path)


def test_spec_validation_and_hub_ids():
    assert MoiraiSpec(size="small", version="1.0", context_length=8, horizon=4).hub_id == (
        "Salesforce/moirai-1.0-R-small"
    )
    assert MoiraiSpec(size="large", context_length=8, horizon=4).hub_id == (
        "Salesforce/moirai-1.1-R-large"
    )
    with pytest.raises(ValueError, match="'huge'"):
        MoiraiSpec(size="huge", context_length=8, horizon=4)
    with pytest.raises(ValueError, match="'1.5'"):
        MoiraiSpec(version="1.5", context_length=8, horizon=4)
    with pytest.raises(ValueError, match="Moirai-2"):
        MoiraiSpec(version="2.0", context_length=8, horizon=4)
    with pytest.raises(ValueError, match="48"):
        MoiraiSpec(patch_size=48, context_length=8, horizon=4)
    with pytest.raises(ValueError, match="horizon"):
        MoiraiSpec(context_length=8, horizon=0)
    with pytest.raises(ValueError, match="no published weights"):
        _ = MoiraiSpec(size="tiny", context_length=8, horizon=4).hub_id
    with pytest.raises(ValueError, match="'huge'"):
        random_moirai("huge")


@pytest.mark.parametrize("size, millions", [("small", 13.8), ("base", 91.4), ("large", 311.0)])
def test_published_sizes_have_the_published_parameter_counts(size, millions):
    # On the meta device: the 311M-parameter architecture without allocating its weights.
    with torch.device("meta"):
        built = random_moirai(size)
    assert sum(p.numel() for p in built.module.parameters()) / 1e6 == pytest.approx(millions,
                                                                                    abs=0.05)
    assert built.module.d_model == {"small": 384, "base": 768, "large": 1024}[size]


def test_missing_uni2ts_gives_install_hint(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec

    def without_uni2ts(name, *args, **kwargs):
        return None if name == "uni2ts" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", without_uni2ts)
    with pytest.raises(ImportError, match="pip install --no-deps uni2ts==2.0.0") as info:
        import_uni2ts.__wrapped__()
    assert "hdt-finetune[moirai]" in str(info.value)


@pytest.mark.parametrize(("edit", "message"), [
    ({"num_layers": 10**9}, r"num_layers must be an integer in \[1, 256\], got 1000000000"),
    ({"d_model": "wide"}, "d_model must be an integer"),
    ({"patch_sizes": [7]}, "patch_sizes must be a list drawn from"),
    ({"d_model": 128}, "the weights do not fit the Moirai its config.json describes"),
])
def test_a_weights_folder_with_an_absurd_or_mismatched_config_is_refused(tiny, tmp_path, edit,
                                                                         message):
    import json

    folder = tmp_path / "moirai"
    tiny.module.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **edit}))
    with pytest.raises(ModelUnavailableError, match=message):
        load_moirai(folder)


def test_weights_with_a_missing_tensor_are_refused(tiny, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "moirai"
    tiny.module.save_pretrained(folder)
    tensors = load_file(str(folder / "model.safetensors"))
    tensors.pop(sorted(tensors)[0])
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(ModelUnavailableError, match="do not fit"):
        load_moirai(folder)


def test_window_scaling_equals_uni2ts_scaler_and_passes_gradients(tiny):
    from hdt_finetune.finetune.uni2ts_compat import window_loc_scale

    adapter = MoiraiAdapter(tiny, context_length=100, horizon=20, patch_size=32)
    context, target = sine_windows(3, 100, 20)
    context.requires_grad_(True)
    batch = adapter.pack(context, target)
    mask = batch.observed_mask * ~batch.prediction_mask.unsqueeze(-1)
    with torch.no_grad():
        loc, scale = tiny.module.scaler(batch.target, mask, batch.sample_id, batch.variate_id)
    ours_loc, ours_scale = window_loc_scale(tiny.module.scaler, batch.target, mask)
    torch.testing.assert_close((batch.target - ours_loc) / ours_scale,
                               (batch.target - loc) / scale)
    embedded = adapter.embed(tiny.module, context, target)
    assert embedded.shape == (3, 3 * 64)
    embedded.pow(2).sum().backward()
    assert context.grad is not None and context.grad.abs().sum() > 0
    # Scale-free where no patch is padded: a window shifted and stretched embeds the same
    # (the model's own scaler; uni2ts's padding is zeros before scaling).
    whole = MoiraiAdapter(tiny, context_length=96, horizon=32, patch_size=32)
    context, target = sine_windows(3, 96, 32)
    torch.testing.assert_close(whole.embed(tiny.module, 3 * context + 7, 3 * target + 7),
                               whole.embed(tiny.module, context, target), rtol=1e-4, atol=1e-4)
