"""Real short training as the evaluator (scikit-learn digits): Optuna pruners stop poor designs early;
an NNI evaluator (Lightning ``Classification``) runs on the built model and reports per epoch."""
from __future__ import annotations

import os
import warnings

import pytest

optuna = pytest.importorskip("optuna")
torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from deepmad_nni.optuna_loop import SearchRanges, TrainingEvaluator, tune  # noqa: E402

os.environ.setdefault("OMP_NUM_THREADS", "1")
BUDGET = {"flops": 60e6, "params": 1.5e6}
EPOCHS = 4


def test_median_pruner_stops_poor_designs_early():
    evaluator = TrainingEvaluator(dataset="digits", epochs=EPOCHS, width_multiplier=0.25, batch_size=64)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    result = tune("nas-bench-macro", **BUDGET, evaluator=evaluator, pruner=pruner, n_trials=8, seed=0, progress=False)
    trials = result.study.trials
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done and pruned
    for t in done:
        assert sorted(t.intermediate_values) == list(range(1, EPOCHS + 1))
        assert t.value == pytest.approx(t.intermediate_values[EPOCHS])
        assert 10 < t.value <= 100 and t.user_attrs["device"] == "cpu"
    trained = [t for t in pruned if t.user_attrs.get("cache") == "miss"]
    assert trained, "a pruned trial must have trained a design of its own"
    for t in trained:  # training really stopped: fewer epochs reported and run than configured
        assert max(t.intermediate_values) < EPOCHS
        assert "pruned at step" in t.user_attrs["pruned_reason"]
    # the evaluator ran EPOCHS epochs per completed design and fewer for every pruned one
    assert sorted(evaluator.epochs_run, reverse=True)[:1] == [EPOCHS]
    assert sum(n < EPOCHS for n in evaluator.epochs_run) == len(trained)
    designs = {t.user_attrs["design_key"] for t in trials if "design_key" in t.user_attrs}
    assert len(evaluator.epochs_run) == len(designs)


def test_hyperband_pruner_runs_on_the_training_evaluator():
    evaluator = TrainingEvaluator(dataset="digits", epochs=2, width_multiplier=0.25, batch_size=64)
    result = tune("nas-bench-macro", **BUDGET, evaluator=evaluator, pruner="hyperband", n_trials=4, seed=1,
                  progress=False)
    assert isinstance(result.study.pruner, optuna.pruners.HyperbandPruner)
    assert all(t.state.is_finished() for t in result.study.trials)
    assert any(t.state == optuna.trial.TrialState.COMPLETE for t in result.study.trials)


def test_nni_lightning_evaluator_on_the_built_model():
    pytest.importorskip("nni")
    from nni.nas.evaluator.pytorch import Classification, DataLoader
    from torch.utils.data import TensorDataset

    from deepmad_nni.data import load_digits
    from deepmad_nni.optuna_loop import NNIEvaluator
    data = load_digits(val_fraction=0.2)
    train = DataLoader(TensorDataset(torch.tensor(data.x_train), torch.tensor(data.y_train)), batch_size=64,
                       shuffle=True)
    val = DataLoader(TensorDataset(torch.tensor(data.x_val), torch.tensor(data.y_val)), batch_size=256)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nni_evaluator = Classification(train_dataloaders=train, val_dataloaders=val, max_epochs=2, num_classes=10,
                                       accelerator="cpu", enable_progress_bar=False, logger=False,
                                       enable_checkpointing=False, enable_model_summary=False)
        evaluator = NNIEvaluator(nni_evaluator, in_channels=1, resolution=8, width_multiplier=0.25, scale=100)
        fixed = SearchRanges(rho=(0.5, 0.5), beta=(10, 10), alpha_last=(8, 8))
        result = tune("nas-bench-macro", **BUDGET, evaluator=evaluator, ranges=fixed, n_trials=2, pruner="none",
                      progress=False)
    first, second = result.study.trials
    assert first.state == second.state == optuna.trial.TrialState.COMPLETE
    assert sorted(first.intermediate_values) == [0, 1]  # one report per validation epoch
    assert first.value == pytest.approx(first.intermediate_values[1]) and 0 < first.value <= 100
    assert second.user_attrs["cache"] == "hit" and second.value == first.value
