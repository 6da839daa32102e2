"""Bad inputs of multi-worker training (issue 24): every malformed ``TF_CONFIG`` and
``--workers`` value is one line with exit code 2, checked before TensorFlow starts, and
writes nothing (``--out`` is not created). The machinery is in ``bad_inputs.py``."""

import json

import pytest
from bad_inputs import OUT, RUN, Case, check_case

MULTI_WORKER = [*RUN, "{recipe}", *OUT, "--set", "train.distribute=multi_worker"]
WORKERS = ["127.0.0.1:2222", "127.0.0.1:2223"]


def tf_config(cluster=None, task=None, **config) -> dict:
    """``{"TF_CONFIG": ...}`` for a two-worker cluster, with ``cluster``, ``task`` or
    other keys replaced."""
    config = {
        "cluster": {"worker": WORKERS} if cluster is None else cluster,
        "task": {"type": "worker", "index": 1} if task is None else task,
        **config,
    }
    return {"TF_CONFIG": json.dumps(config)}


def worker_task(index) -> dict:
    return tf_config(task={"type": "worker", "index": index})


def case(id, says, env):
    return Case(id, MULTI_WORKER, says, env=env)


CASES = [
    case("tf-config-empty", "needs TF_CONFIG", {"TF_CONFIG": ""}),
    case("tf-config-not-json", "TF_CONFIG: not valid JSON", {"TF_CONFIG": "{cluster: 1"}),
    case("tf-config-a-list", "TF_CONFIG: expected {'cluster'", {"TF_CONFIG": "[1, 2]"}),
    case("tf-config-a-string", "got a string", {"TF_CONFIG": '"worker"'}),
    case("tf-config-nested-deep", "nested more than", {"TF_CONFIG": "[" * 100_000}),
    case(
        "tf-config-no-task",
        "TF_CONFIG: task: expected an object, it is missing",
        {"TF_CONFIG": json.dumps({"cluster": {"worker": WORKERS}})},
    ),
    case(
        "tf-config-task-a-list",
        "TF_CONFIG: task: expected an object, got a list",
        tf_config(task=[0]),
    ),
    case(
        "tf-config-cluster-a-string",
        "TF_CONFIG: cluster: expected an object",
        tf_config(cluster="a:1"),
    ),
    case("tf-config-index-out-of-range", "task.index: 2 is not a worker", worker_task(2)),
    case("tf-config-index-negative", "task.index: -1 is not a worker", worker_task(-1)),
    case("tf-config-index-fraction", "task.index: expected an integer, got 1.5", worker_task(1.5)),
    case(
        "tf-config-index-a-word", "task.index: expected an integer, got 'one'", worker_task("one")
    ),
    case("tf-config-index-boolean", "task.index: expected an integer, got True", worker_task(True)),
    case(
        "tf-config-index-missing",
        "task.index: expected an integer, got None",
        tf_config(task={"type": "worker"}),
    ),
    case("tf-config-task-type-ps", "task.type: 'ps'", tf_config(task={"type": "ps", "index": 0})),
    case(
        "tf-config-no-workers",
        "cluster.worker: no worker addresses",
        tf_config(cluster={"worker": []}, task={"type": "worker", "index": 0}),
    ),
    case(
        "tf-config-workers-a-string",
        "cluster.worker: expected a list",
        tf_config(cluster={"worker": "127.0.0.1:2222"}),
    ),
    case(
        "tf-config-address-without-port",
        "cluster.worker[1]: 'localhost' is not 'host:port'",
        tf_config(cluster={"worker": ["127.0.0.1:2222", "localhost"]}),
    ),
    case(
        "tf-config-port-out-of-range",
        "cluster.worker[0]: '127.0.0.1:70000' is not 'host:port'",
        tf_config(cluster={"worker": ["127.0.0.1:70000", "127.0.0.1:2223"]}),
    ),
    case(
        "tf-config-address-a-number",
        "cluster.worker[0]: expected 'host:port', got 2222",
        tf_config(cluster={"worker": [2222, "a:1"]}),
    ),
    case(
        "tf-config-address-twice",
        "'127.0.0.1:2222' is listed twice",
        tf_config(cluster={"worker": ["127.0.0.1:2222", "127.0.0.1:2222"]}),
    ),
    case(
        "tf-config-parameter-servers",
        "cluster.ps: zoo trains with workers",
        tf_config(cluster={"worker": WORKERS, "ps": ["127.0.0.1:2224"]}),
    ),
    case(
        "tf-config-two-chiefs",
        "cluster.chief: at most one chief, got 2",
        tf_config(cluster={"chief": WORKERS, "worker": ["127.0.0.1:2224"]}),
    ),
    case(
        "tf-config-chief-index",
        "task.index: 1 is not a chief",
        tf_config(
            cluster={"chief": ["127.0.0.1:2224"], "worker": WORKERS},
            task={"type": "chief", "index": 1},
        ),
    ),
    Case(
        "workers-one", [*RUN, "{recipe}", "--workers", "1", *OUT], "Invalid value for '--workers'"
    ),
    Case("workers-too-many", [*RUN, "{recipe}", "--workers", "65", *OUT], "2<=x<=64"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_bad_worker_setting_is_one_line_and_changes_nothing(
    case, trained_run, small_corpus, tmp_path, monkeypatch
):
    check_case(case, trained_run, small_corpus, tmp_path, monkeypatch)
