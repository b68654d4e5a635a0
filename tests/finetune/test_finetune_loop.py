"""The Accelerate fine-tuning loop on a tiny random-init PatchTST and ETTh1 windows."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

pytest.importorskip("accelerate")
pytest.importorskip("transformers")

from hdt_finetune.finetune.finetune_config import FinetuneConfig  # noqa: E402
from hdt_finetune.finetune.finetune_loop import run_finetune, sample_crps  # noqa: E402
from hdt_finetune.finetune.forecast_adapter import ModelChoice  # noqa: E402
from hdt_finetune.finetune.model_source import ModelUnavailableError  # noqa: E402
from hdt_finetune.finetune.patchtst_adapter import PatchTSTAdapter  # noqa: E402
from hdt_finetune.run_identity import CheckpointError  # noqa: E402

TINY = ["model.family=patchtst", "model.init=random", "model.size=tiny", "model.patch_size=16",
        "context_length=96", "horizon=24", "val_stride=40", "test_stride=40", "learning_rate=1e-3",
        "batch_size=16", "warmup_steps=2"]


def config(tmp_path, *extra: str, name: str = "run") -> FinetuneConfig:
    return FinetuneConfig.from_overrides([*TINY, f"out={tmp_path / name}", *extra])


def patchtst(source: str | None = None, **choice) -> PatchTSTAdapter:
    choice = ModelChoice(family="patchtst", size="tiny", patch_size=16, source=source,
                         init="random" if source is None else "pretrained", **choice)
    return PatchTSTAdapter.from_choice(choice, 96, 24, seed=0)


def weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model" / "model.safetensors"))


@pytest.fixture
def periodic_csv(tmp_path):
    from tests.conftest import sine_frame

    path = tmp_path / "periodic.csv"
    sine_frame(rows=1500).to_csv(path, index=False)
    return path


def test_loss_falls_and_the_record_holds_the_cost(tmp_path, periodic_csv):
    record = run_finetune(config(tmp_path, "max_steps=60", "eval_every=20", "save_every=60",
                                 f"dataset={periodic_csv}", "val_stride=5", "test_stride=5",
                                 "learning_rate=1e-2"))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
            .splitlines()]
    losses = [r["train_loss"] for r in rows]
    assert len(losses) == 60
    assert sum(losses[-10:]) < 0.8 * sum(losses[:10])
    assert record["weights"] == "random-init" and record["model_init"] == "random"
    cost = record["cost"]
    assert cost["optimizer_steps"] == 60 and cost["samples"] == 60 * 16
    assert cost["tokens"] == cost["samples"] * 6  # 96 / 16 patches a window
    assert cost["flops"] == 6 * cost["n_parameters"] * cost["tokens"]  # full fine-tune
    assert cost["processes"] == 1 and cost["peak_rss_mb"] > 0
    # validation (3 passes) is timed apart from the training steps; the test pass is in neither
    assert 0 < cost["eval_s"] < cost["wall_s"]
    assert cost["train_s"] == pytest.approx(cost["wall_s"] - cost["eval_s"])
    assert json.loads((tmp_path / "run" / "record.json").read_text())["steps"] == 60
    assert (tmp_path / "run" / "model" / "model.safetensors").exists()


@pytest.mark.parametrize("family", ["patchtst", "moirai"])
def test_kill_and_resume_gives_the_same_final_weights(tmp_path, shared_data_dir, monkeypatch,
                                                      family):
    if family == "moirai":
        pytest.importorskip("uni2ts")
    extra = ("max_steps=24", "eval_every=8", "save_every=5", f"model.family={family}",
             "num_samples=5")
    uninterrupted = run_finetune(config(tmp_path, *extra, name="whole"))

    import hdt_finetune.finetune.finetune_loop as loop

    original = loop._log

    def dying_log(accelerator, path, row, trackers):
        original(accelerator, path, row, trackers)
        if row["step"] == 13:  # killed after step 13; the last checkpoint is step 10
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_log", dying_log)
    with pytest.raises(KeyboardInterrupt):
        run_finetune(config(tmp_path, *extra, name="killed"))
    monkeypatch.setattr(loop, "_log", original)
    assert not (tmp_path / "killed" / "record.json").exists()
    resumed = run_finetune(config(tmp_path, *extra, name="killed"))

    whole, again = weights(tmp_path / "whole"), weights(tmp_path / "killed")
    assert whole.keys() == again.keys()
    assert all(torch.equal(whole[k], again[k]) for k in whole)
    assert resumed["test"] == uninterrupted["test"]
    assert resumed["cost"]["optimizer_steps"] == 24
    steps = [json.loads(line)["step"] for line in
             (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 25))  # nothing lost, nothing logged twice


def test_damaged_or_foreign_checkpoints_are_refused(tmp_path, shared_data_dir):
    run_finetune(config(tmp_path, "max_steps=6", "eval_every=6", "save_every=6"))
    run_finetune(config(tmp_path, "max_steps=6", "eval_every=6", "save_every=6", "seed=3",
                        name="other"))
    # A checkpoint of another run, planted among this run's.
    (tmp_path / "other" / "checkpoints" / "step_6").rename(
        tmp_path / "run" / "checkpoints" / "step_9")
    with pytest.raises(CheckpointError, match="belongs to another run"):
        run_finetune(config(tmp_path, "max_steps=6", "eval_every=6", "save_every=6"))
    (tmp_path / "run" / "checkpoints" / "step_9").rename(tmp_path / "step_9")
    step = tmp_path / "run" / "checkpoints" / "step_6"
    data = bytearray((step / "optimizer.bin").read_bytes())
    data[-1] ^= 0xFF
    (step / "optimizer.bin").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged"):
        run_finetune(config(tmp_path, "max_steps=6", "eval_every=6", "save_every=6"))


def test_a_checkpoint_emptied_by_a_crash_falls_back_to_the_previous_one(tmp_path, caplog,
                                                                         shared_data_dir):
    run_finetune(config(tmp_path, "max_steps=6", "eval_every=3", "save_every=3"))
    newest = tmp_path / "run" / "checkpoints" / "step_6"
    for path in newest.iterdir():  # what a power loss after the rename can leave
        path.unlink()
    (tmp_path / "run" / "record.json").unlink()
    with caplog.at_level("INFO"):
        record = run_finetune(config(tmp_path, "max_steps=6", "eval_every=3", "save_every=3"))
    assert "skipping damaged checkpoint" in caplog.text and "step_6" in caplog.text
    assert "resumed from" in caplog.text and "step_3" in caplog.text
    assert record["cost"]["optimizer_steps"] == 6
    steps = [json.loads(line)["step"] for line in
             (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 7))


def test_lora_adapter_round_trips_and_merges(tmp_path, shared_data_dir):
    from accelerate.utils import set_seed
    from peft import PeftModel

    record = run_finetune(config(tmp_path, "mode=lora", "max_steps=10", "eval_every=10",
                                 "save_every=10", "learning_rate=1e-2"))
    assert record["cost"]["n_trainable"] < record["cost"]["n_parameters"] / 2
    set_seed(0)  # the loop seeds before building the model: the same random base weights
    base = patchtst().module
    restored = PeftModel.from_pretrained(base, str(tmp_path / "run" / "lora_adapter")).eval()
    merged = patchtst(str(tmp_path / "run" / "model")).module.eval()
    context = torch.randn(4, 96, 1)
    with torch.no_grad():
        a = restored(past_values=context).prediction_outputs
        b = merged(past_values=context).prediction_outputs
    assert torch.allclose(a, b, atol=1e-5)
    assert not any("lora" in k for k in weights(tmp_path / "run"))


def test_offline_hub_id_gets_a_helpful_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match=r"model\.init=random") as err:
        patchtst("ibm-granite/granite-timeseries-patchtst")
    assert "--local-dir" in str(err.value)


def test_a_pickle_handed_in_as_weights_is_refused(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ModelUnavailableError, match="Only safetensors weights are loaded"):
        patchtst(str(folder))


def test_config_names_unknown_keys_and_bad_values(tmp_path):
    with pytest.raises(ValueError, match="unknown setting 'max_stepz'"):
        FinetuneConfig.from_overrides(["max_stepz=3"])
    with pytest.raises(ValueError, match="bad value for max_steps: 'ten'"):
        FinetuneConfig.from_overrides(["max_steps=ten"])
    with pytest.raises(ValueError, match="bad value for mode: 'half'"):
        FinetuneConfig.from_overrides(["mode=half"])
    with pytest.raises(ValueError, match="bad value for learning_rate: 'inf'"):
        FinetuneConfig.from_overrides(["learning_rate=inf"])
    with pytest.raises(ValueError, match="learning_rate must be a finite number"):
        FinetuneConfig(learning_rate=float("nan"))
    with pytest.raises(ValueError, match="bad value for train_data: 'distill:hdt:x'"):
        FinetuneConfig.from_overrides(["train_data=distill:hdt:x"])
    config = FinetuneConfig.from_overrides(["model.init=random", "train_data=distill:hdt:192"])
    assert config.model.init == "random" and str(config.train_data) == "distill:hdt:192:0"


def test_sample_crps_matches_its_closed_form_cases():
    target = torch.tensor([0.0, 1.0])
    exact = torch.stack([target, target])  # a point mass on the truth scores zero
    assert torch.allclose(sample_crps(exact, target), torch.zeros(2))
    two = torch.tensor([[0.0], [2.0]])  # samples {0, 2}, truth 0: E|X-y| = 1, E|X-X'| = 1
    assert sample_crps(two, torch.tensor([0.0])).item() == pytest.approx(0.5)


def test_zero_steps_is_a_zero_shot_evaluation(tmp_path, shared_data_dir):
    record = run_finetune(config(tmp_path, "max_steps=0"))
    assert record["steps"] == 0 and record["cost"]["optimizer_steps"] == 0
    assert record["cost"]["flops"] == 0 and record["test"]["mse"] > 0
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_corpus_of_other_datasets_and_generated_series_trains(tmp_path, shared_data_dir):
    from hdt_finetune.finetune.pretraining_corpus import generated_series

    series = generated_series(4, 500, seed=1)
    assert series.shape == (500, 4)
    assert abs(float(series.mean())) < 1e-4 and abs(float(series.std()) - 1) < 1e-3
    record = run_finetune(config(tmp_path, "max_steps=3", "eval_every=3", "save_every=3",
                                 "dataset=ETTh2", "train_data=corpus:ETTm2,generated"))
    parts = record["train_data"]["parts"]
    assert record["train_data"]["kind"] == "corpus" and set(parts) == {"ETTm2", "generated"}
    # Seasonal mixtures, GP draws and mixtures of ETTm2's series, as many points each.
    assert parts["ETTm2"] == 34560 * 7 and parts["generated"] == 3 * 64 * 4096


def test_mixtures_of_real_series_are_standardised_convex_combinations():
    from hdt_finetune.finetune.pretraining_corpus import mixup_series

    rng = np.random.default_rng(0)
    long, short = rng.normal(5, 3, (300, 2)), rng.normal(size=(50, 4))
    mixed = mixup_series([long, short], 30, 100, seed=1)
    assert mixed.shape == (100, 30) and np.isfinite(mixed).all()
    assert np.allclose(mixed.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(mixed.std(axis=0), 1, atol=1e-3)
    np.testing.assert_array_equal(mixed, mixup_series([long, short], 30, 100, seed=1))
    assert not np.array_equal(mixed, mixup_series([long, short], 30, 100, seed=2))
    # A block shorter than the mixture is never drawn from: alone, it gives no columns.
    assert mixup_series([short], 3, 100, seed=1).shape == (100, 0)
    single = mixup_series([long[:, :1]], 50, 300, seed=1)  # one stretch possible: the whole
    whole = (long[:, 0] - long[:, 0].mean()) / long[:, 0].std()
    assert np.allclose(single, whole[:, None], atol=1e-5)


def test_gaussian_process_series_are_standardised_and_periodic_kernels_show():
    from hdt_finetune.finetune.pretraining_corpus import kernel_series

    series = kernel_series(40, 512, seed=3)
    assert series.shape == (512, 40) and np.isfinite(series).all()
    assert np.allclose(series.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(series.std(axis=0), 1, atol=1e-3)
    assert not np.array_equal(series, kernel_series(40, 512, seed=4))
    np.testing.assert_array_equal(series, kernel_series(40, 512, seed=3))
    # Some draws carry a strong single period: their spectrum is dominated by one bin.
    spectrum = np.abs(np.fft.rfft(series, axis=0))[1:]
    peaked = (spectrum.max(axis=0) / spectrum.sum(axis=0)) > 0.2
    assert 0 < peaked.sum() < 40


def test_a_pickle_beside_a_stray_safetensors_file_is_never_unpickled(tmp_path):
    class Payload:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    folder = tmp_path / "model"
    patchtst().module.save_pretrained(str(folder))
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    (folder / "notes.safetensors").write_bytes(b"not the weights")
    with pytest.raises(ModelUnavailableError, match="holds no model.safetensors"):
        patchtst(str(folder))
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(("damage", "message"), [
    ("absurd", r"num_hidden_layers must be an integer in \[1, 256\]"),
    ("missing", "the weights do not fit the PatchTST"),
])
def test_patchtst_weights_that_do_not_fit_are_refused(tmp_path, damage, message):
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "model"
    patchtst().module.save_pretrained(str(folder))
    if damage == "absurd":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 10**9}))
    else:
        tensors = load_file(str(folder / "model.safetensors"))
        tensors.pop(sorted(tensors)[-1])
        save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelUnavailableError, match=message):
        patchtst(str(folder))


def test_the_log_schedule_validates_the_same_steps_for_every_length():
    log = [s for s in range(1001)
           if FinetuneConfig(eval_schedule="log", eval_every=200, max_steps=1000).validates_at(s)]
    assert log == [0, 10, 20, 40, 80, 160, 320, 400, 600, 800, 1000]
    short = [s for s in range(144)
             if FinetuneConfig(eval_schedule="log", eval_every=200, max_steps=143).validates_at(s)]
    assert short == [0, 10, 20, 40, 80, 143]
    every = [s for s in range(101) if FinetuneConfig(eval_every=50, max_steps=100).validates_at(s)]
    assert every == [50, 100]
    with pytest.raises(ValueError, match="eval_schedule must be one of"):
        FinetuneConfig(eval_schedule="sometimes")


def test_the_starting_weights_are_validated_and_can_be_kept(tmp_path, periodic_csv):
    """Step 0 is validated; a learning rate that only makes the model worse leaves the
    starting weights the best, and they are what is tested. Test probes at every validation
    point are recorded and kept out of the fine-tune's cost."""
    base = [f"dataset={periodic_csv}", "val_stride=5", "test_stride=5", "eval_schedule=log",
            "curve_test_stride=3", "save_every=100"]
    zero_shot = run_finetune(config(tmp_path, "max_steps=0", *base, name="zero"))
    record = run_finetune(config(tmp_path, "max_steps=40", "learning_rate=5", "patience=2",
                                 "max_grad_norm=1000", *base))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
            .splitlines()]
    validated = [r for r in rows if "val_mse" in r]
    assert [r["step"] for r in validated] == [0, 10, 20]  # stale twice after step 0: stopped
    assert all("test_mse_probe" in r for r in validated)
    assert record["best_val_mse"] == validated[0]["val_mse"]
    assert record["test"]["mse"] == pytest.approx(zero_shot["test"]["mse"], rel=1e-6)
    assert record["cost"]["probe_s"] > 0
    assert record["cost"]["wall_s"] >= record["cost"]["eval_s"]


def test_a_validation_only_run_trains_the_same_and_never_tests(tmp_path, periodic_csv,
                                                               monkeypatch):
    """test_stride=0 (a screen judged on validation): the same training and validation as a
    tested run, no test pass at all, and a record that says so."""
    import hdt_finetune.finetune.finetune_loop as loop

    base = [f"dataset={periodic_csv}", "val_stride=5", "max_steps=20", "eval_every=10",
            "save_every=100"]
    tested = run_finetune(config(tmp_path, *base, "test_stride=5", name="tested"))
    passes = []
    errors = loop._errors
    monkeypatch.setattr(loop, "_errors", lambda *a, **k: passes.append(a[2]) or errors(*a, **k))
    untested = run_finetune(config(tmp_path, *base, "test_stride=0", name="untested"))
    assert untested["test"] is None and tested["test"]["mse"] > 0
    assert untested["best_val_mse"] == tested["best_val_mse"]
    assert untested["steps"] == tested["steps"]
    assert len(passes) == 2  # the validations at steps 10 and 20, nothing else
    with pytest.raises(ValueError, match="test_stride must be >= 1, got 0"):
        config(tmp_path, "max_steps=0", "test_stride=0")
    with pytest.raises(ValueError, match="test_stride must be >= 0"):
        config(tmp_path, "test_stride=-1")
    from hdt_finetune.finetune.side_by_side import run_side_by_side

    with pytest.raises(ValueError, match="compares test MSE: test_stride must be >= 1"):
        run_side_by_side(config(tmp_path, *base, "test_stride=0", name="table"))
    assert not (tmp_path / "table").exists()  # refused before any arm trained


def test_a_sampled_validation_depends_on_the_weights_alone(tmp_path, shared_data_dir):
    """Moirai's point forecast is a median of samples: test probes between validations, or
    a different final test, must not change the validation curve or the kept step."""
    pytest.importorskip("uni2ts")
    base = ["model.family=moirai", "max_steps=20", "eval_schedule=log", "num_samples=5",
            "save_every=100"]

    def run(name, *extra):
        record = run_finetune(config(tmp_path, *base, *extra, name=name))
        rows = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        return record, [json.loads(r)["val_mse"] for r in rows if "val_mse" in r]

    plain, plain_curve = run("plain", "test_stride=0")
    probed, probed_curve = run("probed", "curve_test_stride=3", "test_stride=7")
    assert len(plain_curve) == 3 and plain_curve == probed_curve  # steps 0, 10, 20
    assert plain["best_val_mse"] == probed["best_val_mse"]
    assert probed["test"]["mse"] > 0 and plain["test"] is None


def test_a_mix_of_sets_trains_on_the_windows_of_each_and_records_every_member(
        tmp_path, shared_data_dir):
    from hdt_finetune.data import DataSpec, prepare_data
    from hdt_finetune.distillation import DistillConfig, run_distillation
    from hdt_finetune.finetune.finetune_data import training_windows
    from hdt_finetune.finetune.train_data import TrainData

    sets = [run_distillation(DistillConfig(data=DataSpec("ETTh1"), method="random",
                                           out=tmp_path / f"set{k}", length=length, seed=k,
                                           show_progress=False))
            for k, length in ((0, 192), (1, 256))]
    mix = TrainData.parse("+".join(str(s) for s in sets))
    assert mix.paths == tuple(sets) and TrainData.parse(str(mix)) == mix
    data = prepare_data("ETTh1")
    (x, y), source = training_windows(mix, data, 96, 24)
    alone = [training_windows(TrainData.of_set(s), data, 96, 24) for s in sets]
    # No window straddles the two sets: (192 - 120 + 1) + (256 - 120 + 1) per channel.
    assert x.shape[0] == sum(a[0][0].shape[0] for a in alone) == 7 * (73 + 137)
    torch.testing.assert_close(x, torch.cat([a[0][0] for a in alone]))
    assert source["kind"] == "mix" and source["points"] == 7 * (192 + 256)
    assert source["content_sha256"] == [a[1]["content_sha256"] for a in alone]
    record = run_finetune(config(tmp_path, "max_steps=2", "eval_every=2", "save_every=2",
                                 "dataset=ETTh1", f"train_data={mix}"))
    assert record["train_data"]["members"][1]["path"] == str(sets[1])
    with pytest.raises(ValueError, match="names a set twice"):
        TrainData.parse(f"{sets[0]}+{sets[0]}")
    with pytest.raises(ValueError, match="empty member"):
        TrainData.parse(f"{sets[0]}+")
