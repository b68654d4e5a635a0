"""A fine-tune's out= folder holds one run: changed settings, a zero-shot after a training
run, a folder of someone else's files and a second fine-tune are all refused, and a run
that diverges stops with advice instead of writing NaN."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

pytest.importorskip("accelerate")
pytest.importorskip("transformers")

from hdt_finetune.cli import main  # noqa: E402
from hdt_finetune.finetune.finetune_config import FinetuneConfig  # noqa: E402
from hdt_finetune.finetune.finetune_loop import FinetuneDivergedError, run_finetune  # noqa: E402
from hdt_finetune.finetune.run_folder import RunFolderError  # noqa: E402

TINY = ["model.family=patchtst", "model.init=random", "model.size=tiny", "model.patch_size=16",
        "horizon=24", "val_stride=40", "test_stride=40", "batch_size=16", "warmup_steps=2",
        "max_steps=3", "eval_every=3", "save_every=3"]


def config(out, *extra: str) -> FinetuneConfig:
    return FinetuneConfig.from_overrides([*TINY, f"out={out}", *extra])


def weights(out) -> dict[str, torch.Tensor]:
    return load_file(str(out / "model" / "model.safetensors"))


def test_changed_hyper_parameters_are_not_resumed_into_an_old_run(tmp_path, shared_data_dir):
    out = tmp_path / "run"
    run_finetune(config(out, "learning_rate=1e-3"))
    first = weights(out)
    with pytest.raises(RunFolderError, match=r"other settings \(learning_rate\); pass "
                                             "overwrite=true"):
        run_finetune(config(out, "learning_rate=0.5"))
    assert json.loads((out / "record.json").read_text())["config"]["learning_rate"] == "0.001"
    for change in ("weight_decay=0.1", "warmup_steps=0", "patience=1", "max_grad_norm=0.5",
                   "curve_test_stride=8"):
        with pytest.raises(RunFolderError, match=change.split("=")[0]):
            run_finetune(config(out, "learning_rate=1e-3", change))
    record = run_finetune(config(out, "learning_rate=0.5", "overwrite=true"))
    assert record["config"]["learning_rate"] == "0.5"
    assert not all(torch.equal(first[k], v) for k, v in weights(out).items())
    # Settings that do not change the result resume the same run.
    run_finetune(config(out, "learning_rate=0.5", "test_stride=80", "num_samples=7"))


def test_a_zero_shot_run_never_reports_an_older_runs_weights(tmp_path, shared_data_dir):
    out, fresh = tmp_path / "run", tmp_path / "fresh"
    run_finetune(config(out, "learning_rate=1e-2"))
    assert (out / "best_model.safetensors").exists()
    with pytest.raises(RunFolderError, match="max_steps"):
        run_finetune(config(out, "max_steps=0"))
    zero = run_finetune(config(out, "max_steps=0", "overwrite=true"))
    assert not (out / "best_model.safetensors").exists()
    assert zero["test"] == run_finetune(config(fresh, "max_steps=0"))["test"]


def test_a_folder_we_did_not_write_is_never_touched(tmp_path, shared_data_dir):
    out = tmp_path / "inputs"
    out.mkdir()
    (out / "ETTh1.csv").write_text("date,OT\n")
    for extra in ((), ("overwrite=true",)):
        with pytest.raises(RunFolderError, match=r"did not write \(ETTh1.csv\)"):
            run_finetune(config(out, *extra))
    assert (out / "ETTh1.csv").read_text() == "date,OT\n"


def test_a_second_fine_tune_into_a_busy_folder_is_refused(tmp_path, shared_data_dir):
    import fcntl

    out = tmp_path / "run"
    out.mkdir()
    with (out / ".lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("process 4242 on elsewhere since 2026-12-04 10:00:00\n")
        held.flush()
        with pytest.raises(RunFolderError, match="in use by process 4242 on elsewhere"):
            run_finetune(config(out))
    assert not (out / "metrics.jsonl").exists()
    run_finetune(config(out))  # free again
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3


def test_a_diverging_fine_tune_stops_with_advice_and_writes_no_nan(tmp_path, shared_data_dir,
                                                                   capsys):
    with pytest.raises(FinetuneDivergedError, match="Lower learning_rate"):
        run_finetune(config(tmp_path / "run", "learning_rate=1e30", "max_grad_norm=1e30"))
    assert not (tmp_path / "run" / "record.json").exists()
    assert main(["finetune", *TINY, "learning_rate=inf", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "bad value for learning_rate: 'inf'" in err and "Traceback" not in err


def test_a_non_finite_start_blames_the_weights_not_the_learning_rate(tmp_path):
    from hdt_finetune.finetune.finetune_loop import _check_finite

    with pytest.raises(FinetuneDivergedError, match=r"starting weights give a validation MSE "
                                                    r"of nan before any training step"):
        _check_finite(float("nan"), "validation MSE", 0, config(tmp_path / "run"))
    with pytest.raises(FinetuneDivergedError, match="diverged at step 10.*Lower learning_rate"):
        _check_finite(float("inf"), "validation MSE", 10, config(tmp_path / "run"))


def test_an_early_stopped_run_rerun_trains_no_further(tmp_path, shared_data_dir):
    out = tmp_path / "run"
    args = ("max_steps=60", "eval_every=1", "save_every=1", "patience=1", "learning_rate=3e-2")
    first = run_finetune(config(out, *args))
    assert first["steps"] < 60  # it stopped early
    lines = (out / "metrics.jsonl").read_text()
    again = run_finetune(config(out, *args))
    assert again["steps"] == first["steps"] and again["test"] == first["test"]
    assert (out / "metrics.jsonl").read_text() == lines


def test_overwrite_starts_afresh_and_takes_our_leftovers_with_it(tmp_path, shared_data_dir,
                                                                   caplog):
    out = tmp_path / "run"
    run_finetune(config(out))
    (out / ".best_model.safetensors.tmp").write_bytes(b"left by a kill")
    (out / ".run.json.x1y2.tmp").write_text("{")
    (out / "hdt_finetune").mkdir()  # a tracker's folder
    with caplog.at_level("INFO"):
        run_finetune(config(out))
    assert "resumed from" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO"):
        run_finetune(config(out, "overwrite=true"))
    assert "resumed from" not in caplog.text and "removed the previous run's files" in caplog.text
    assert sorted(p.name for p in out.iterdir()) == [
        ".lock", "best_model.safetensors", "checkpoints", "metrics.jsonl", "model",
        "record.json", "run.json"]
