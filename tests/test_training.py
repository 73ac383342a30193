"""Real SGD training on scikit-learn digits (seconds on a CPU)."""
import pytest

torch = pytest.importorskip("torch")

from deepmad_nni.builder import build_model  # noqa: E402
from deepmad_nni.core import from_structure  # noqa: E402
from deepmad_nni.data import load_digits  # noqa: E402
from deepmad_nni.training import seed_everything, train_and_evaluate  # noqa: E402

NET = [{"class": "ConvKXBNRELU", "in": 1, "out": 16, "s": 1, "k": 3},
       {"class": "SuperResK1DWK1", "in": 16, "out": 24, "s": 2, "k": 3, "L": 1, "btn": 48},
       {"class": "ConvKXBNRELU", "in": 24, "out": 64, "s": 1, "k": 1}]


def make_model(seed=0):
    seed_everything(seed)
    return build_model(from_structure(NET, resolution=8, num_classes=10))


def test_training_learns_digits():
    data = load_digits(val_fraction=0.2, seed=0)
    seen = []
    result = train_and_evaluate(make_model(), data, epochs=4, batch_size=64, lr=0.1,
                                report=lambda epoch, acc: seen.append((epoch, acc)))
    assert result["accuracy"] > 0.8  # chance is 0.1
    assert result["epochs"] == 4 and [e for e, _ in seen] == [1, 2, 3, 4]
    assert [a for _, a in seen] == result["accuracies"] and result["eval_split"] == "val"
    assert 0 <= result["test_accuracy"] <= 1 and result["device"] == "cpu" and result["wall_time_s"] > 0
    assert result["train_loss"][-1] < result["train_loss"][0]


def test_same_seed_same_result_and_pruning():
    data = load_digits(train_size=400, seed=1)
    a = train_and_evaluate(make_model(3), data, epochs=1, batch_size=50, seed=7)
    b = train_and_evaluate(make_model(3), data, epochs=1, batch_size=50, seed=7)
    assert a["accuracies"] == b["accuracies"] and a["train_loss"] == b["train_loss"]

    class Prune(Exception):
        pass

    calls = []

    def report(epoch, acc):
        calls.append(epoch)
        raise Prune

    with pytest.raises(Prune):
        train_and_evaluate(make_model(), data, epochs=5, batch_size=50, report=report)
    assert calls == [1]


@pytest.mark.parametrize("kwargs, name", [({"epochs": 0}, "epochs"), ({"epochs": 1, "batch_size": 0}, "batch_size"),
                                          ({"epochs": 1, "lr": -1.0}, "lr"), ({"epochs": 1, "device": "gpu?"}, "device"),
                                          ({"epochs": 1, "report": 3}, "report")])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        train_and_evaluate(make_model(), load_digits(train_size=50), **kwargs)
