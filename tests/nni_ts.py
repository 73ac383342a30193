"""A NasExperiment config for NNI's default (ts) engine in a test: local trials, no GPU, its own port, and NNI's
experiment registry and working directory under the test's temporary folder."""
import socket


def ts_config(tmp_path, monkeypatch, max_trial_number: int):
    """(config, port) for ``NasExperiment(...).run(port=port)``."""
    from nni.nas.experiment import NasExperimentConfig
    monkeypatch.setenv("NNI_CONFIG_DIR", str(tmp_path / "nni-config"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = NasExperimentConfig("ts", "simplified", "local")
    config.experiment_working_directory = str(tmp_path)
    config.max_trial_number, config.trial_concurrency = max_trial_number, 1
    config.training_service.use_active_gpu = False
    return config, port
