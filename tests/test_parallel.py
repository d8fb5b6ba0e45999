"""Several devices and several hosts, on the CPU: sharded sweeps, data parallelism, a two-process program.

JAX fixes its device count when its backend starts, so every 4-device check runs in one subprocess started with
XLA_FLAGS=--xla_force_host_platform_device_count=4, which computes each comparison's runs and their one-device
references and saves them (the `four_devices` fixture); the multi-host check runs as two local processes joined by
a loopback coordinator. A hang limit turns a hang into a failure.
"""

import contextlib
import csv
import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_env, command_limit, run_main, xla_flags

pytestmark = pytest.mark.portable  # several devices and processes: make test-portable, not make test


def _env(num_devices: int | None) -> dict[str, str]:
    """The commands' environment on the CPU, with `num_devices` devices (JAX's default where None)."""
    count = [] if num_devices is None else [f"--xla_force_host_platform_device_count={num_devices}"]
    return cli_env(JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(*count))


def read_metrics_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def assert_same_metrics_csv(path, reference, rtol, atol=1e-5):
    header, rows = read_metrics_csv(path)
    ref_header, ref_rows = read_metrics_csv(reference)
    assert header == ref_header
    assert len(rows) == len(ref_rows) > 0
    ids = header.index("update") + 1  # config, seed, update: integers that must match exactly
    assert [r[:ids] for r in rows] == [r[:ids] for r in ref_rows]
    values = np.array([[float(v) for v in r[ids:]] for r in rows])
    ref_values = np.array([[float(v) for v in r[ids:]] for r in ref_rows])
    for j, name in enumerate(header[ids:]):
        np.testing.assert_allclose(values[:, j], ref_values[:, j], rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=name)


# --- one process with 4 devices: a sharded sweep, data parallelism, the CLI's --data-parallel ----------------

# Every check that needs 4 devices runs in ONE process (a compile costs seconds; a process start and JAX's import
# too), on the smallest runs that show the property (sharded equals one device): 16 steps per env, 3 updates. The
# process saves what each test compares, and the one-device runs as metrics.csv files, the references of the CLI's
# multi-device runs.
NUM_UPDATES = 3
TINY = ["--num-steps", "16", "--num-minibatches", "2", "--update-epochs", "2"]
SWEEP_ARGS = ["--num-envs", "4", *TINY, "--total-timesteps", str(4 * 16 * NUM_UPDATES), "--sweep", "lr=1e-4,1e-3",
              "--num-seeds", "3", "--quiet"]
"""A sweep as the CLI runs it: 2 configurations x 3 seeds."""
DATA_PARALLEL_ARGS = ["--num-envs", "8", *TINY, "--total-timesteps", str(8 * 16 * NUM_UPDATES), "--quiet"]
"""One run of 8 envs, 2 per device."""

FOUR_DEVICES = f"""
    import json, sys
    import jax
    import numpy as np
    from purejaxppo import SweepResult
    from purejaxppo.cli.args import build_parser, config_from_args
    from purejaxppo.core.train import make_train
    from purejaxppo.core.config import PPOConfig
    from purejaxppo.io.report import write_metrics_csv
    from purejaxppo.scale.parallel import make_data_parallel_train
    from purejaxppo.scale.sweep import Sweep

    out_dir = sys.argv[1]
    sys.path.insert(0, sys.argv[2])
    from conftest import run_main

    assert len(jax.devices()) == 4, jax.devices()
    leaves = lambda tree: jax.tree.leaves(tree)
    cli_config = lambda args: config_from_args(build_parser().parse_args(args))

    # the CLI's sweep, sharded over the 4 devices, and on one
    config = cli_config({SWEEP_ARGS!r})
    shapes = []
    job = Sweep(config, num_seeds=3, callback=lambda m: shapes.append([np.shape(v) for v in m.values()]),
                lr=[1e-4, 1e-3])
    sharded = job.run()
    one_job = Sweep(config, num_seeds=3, devices=jax.devices()[:1], lr=[1e-4, 1e-3])
    one = one_job.run()
    write_metrics_csv(out_dir + "/sweep-one-device.csv", one)
    sweep = {{
        "rows_num_devices": [len(x.sharding.device_set) for x in leaves(job.rows)],
        "rows_len": [x.shape[0] for x in leaves(job.rows)],
        "rows_shard_len": [s.data.shape[0] for x in leaves(job.rows) for s in x.addressable_shards],
        "one_rows_num_devices": [len(x.sharding.device_set) for x in leaves(one_job.rows)],
        "one_rows_len": [x.shape[0] for x in leaves(one_job.rows)],
        "callback_shapes": np.array(shapes).reshape(len(shapes), -1),
        "hyperparams_lr": sharded.hyperparams["lr"],
    }}
    for name, result in (("sharded", sharded), ("one", one)):
        for k, v in result.metrics.items():
            sweep[f"{{name}}/metrics/{{k}}"] = v
        for i, v in enumerate(leaves(result.params)):
            sweep[f"{{name}}/params/{{i}}"] = v
    np.savez(out_dir + "/sweep.npz", **sweep)

    # one run data-parallel over the 4 devices, and the same run on one
    config = cli_config({DATA_PARALLEL_ARGS!r})
    dp = make_data_parallel_train(config)(jax.random.key(0))
    single = jax.jit(make_train(config))(jax.random.key(0))
    obs = dp.state.env.obs
    data = {{
        "obs_spec": np.array([str(a) for a in obs.sharding.spec]),
        "obs_num_devices": len(obs.sharding.device_set),
        "obs_shard_rows": [s.data.shape[0] for s in obs.addressable_shards],
        "params_replicated": [p.sharding.is_fully_replicated for p in leaves(dp.params)],
        "single_num_devices": len(single.state.env.obs.sharding.device_set),
    }}
    try:
        make_data_parallel_train(PPOConfig(env="CartPole-v1", num_envs=6, total_timesteps=768))
        data["error"] = ""
    except ValueError as e:
        data["error"] = str(e)
    make_data_parallel_train(PPOConfig(env="CartPole-v1", num_envs=6, total_timesteps=768),
                             devices=jax.devices()[:2])  # 6 envs over 2 devices divide: fine
    for name, o in (("dp", dp), ("single", single)):
        for k, v in o.metrics.items():
            data[f"{{name}}/metrics/{{k}}"] = np.asarray(v)
        for i, v in enumerate(leaves(o.params)):
            data[f"{{name}}/params/{{i}}"] = np.asarray(v)
    np.savez(out_dir + "/data_parallel.npz", **data)
    as_sweep = lambda m: {{k: np.asarray(v)[None, None] for k, v in m.items()}}  # [1 config, 1 seed, updates]
    write_metrics_csv(out_dir + "/single.csv", SweepResult(config=config, hyperparams={{}}, seeds=np.arange(1),
                                                           metrics=as_sweep(single.metrics), params=None))

    # the CLI's --data-parallel, the same run as the one above
    cli = run_main("--data-parallel", *{DATA_PARALLEL_ARGS!r}, "--out", out_dir + "/cli-dp")
    with open(out_dir + "/cli-dp.json", "w") as f:
        json.dump([cli.returncode, cli.stdout, cli.stderr], f)
"""


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    """The folder where the 4-device process saved sweep.npz, data_parallel.npz, the CLI's --data-parallel run
    (cli-dp/, its exit status and output in cli-dp.json) and the one-device references' metrics.csv
    (sweep-one-device.csv, single.csv)."""
    out = tmp_path_factory.mktemp("four-devices")
    script = out / "script.py"
    script.write_text(textwrap.dedent(FOUR_DEVICES))
    proc = subprocess.run([sys.executable, str(script), str(out), str(Path(__file__).parent)], capture_output=True,
                          text=True, timeout=command_limit(), env=_env(4))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def load(path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.slow
def test_sweep_sharded_over_four_devices_equals_one_device(four_devices):
    r = load(four_devices / "sweep.npz")
    # 6 runs padded to 8, two per device; on one device, the 6 runs alone
    assert set(r["rows_num_devices"]) == {4}
    assert set(r["rows_len"]) == {8} and set(r["rows_shard_len"]) == {2}
    assert set(r["one_rows_num_devices"]) == {1} and set(r["one_rows_len"]) == {6}
    # the callback: once per update, every metric [C * S] = [6], the padding rows dropped
    assert r["callback_shapes"].shape[0] == NUM_UPDATES
    assert set(r["callback_shapes"].ravel()) == {6}
    np.testing.assert_array_equal(r["hyperparams_lr"], [1e-4, 1e-3])

    metrics = sorted(k.split("/")[-1] for k in r if k.startswith("sharded/metrics/"))
    assert "episode_return" in metrics and "value_loss" in metrics
    for name in metrics:
        a, b = r[f"sharded/metrics/{name}"], r[f"one/metrics/{name}"]
        assert a.shape == b.shape == (2, 3, NUM_UPDATES), name
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, equal_nan=True, err_msg=name)
    num_params = sum(k.startswith("sharded/params/") for k in r)
    assert num_params > 0
    for i in range(num_params):
        a, b = r[f"sharded/params/{i}"], r[f"one/params/{i}"]
        assert a.shape == b.shape and a.shape[:2] == (2, 3)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # distinct runs (not one run copied around): the configurations and the seeds differ
    loss = r["sharded/metrics/value_loss"]
    assert not np.allclose(loss[0, 0], loss[1, 0], rtol=1e-3) and not np.allclose(loss[0, 0], loss[0, 2], rtol=1e-3)


@pytest.mark.slow
def test_data_parallel_over_four_devices_equals_one_device_run(four_devices):
    r = load(four_devices / "data_parallel.npz")
    # the envs are split over the 4 devices, 2 each; the parameters are replicated
    assert "envs" in r["obs_spec"].tolist(), r["obs_spec"]
    assert int(r["obs_num_devices"]) == 4
    assert r["obs_shard_rows"].tolist() == [2, 2, 2, 2]
    assert r["params_replicated"].all()
    assert int(r["single_num_devices"]) == 1
    assert "num_envs=6" in str(r["error"]) and "4 devices" in str(r["error"])

    num_params = sum(k.startswith("dp/params/") for k in r)
    assert num_params > 0
    for i in range(num_params):
        np.testing.assert_allclose(r[f"dp/params/{i}"], r[f"single/params/{i}"], rtol=1e-4, atol=1e-5)
    metrics = sorted(k.split("/")[-1] for k in r if k.startswith("dp/metrics/"))
    assert {"episode_return", "value_loss", "policy_loss", "entropy", "approx_kl"} <= set(metrics)
    for name in metrics:
        a, b = r[f"dp/metrics/{name}"], r[f"single/metrics/{name}"]
        assert a.shape == b.shape == (NUM_UPDATES,), name
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True, err_msg=name)


# --- two processes (hosts) ----------------------------------------------------------------------------------


@contextlib.contextmanager
def reserved_port():
    """A loopback port that stays reserved for the block: this socket holds it with SO_REUSEPORT, which JAX's
    coordinator (a gRPC server, which sets SO_REUSEPORT too) shares, while no other program can take it between
    here and the coordinator's start. The socket never listens, so every connection reaches the coordinator."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.mark.slow
def test_two_process_sweep_equals_single_process(tmp_path, four_devices):
    """The CLI's sweep as two processes of one device each equals the same sweep on one device in one process
    (the 4-device process's reference)."""
    with reserved_port() as port:
        codes, output = _run_two_processes(tmp_path, port)
    assert codes == [0, 0], output

    assert not (tmp_path / "p1").exists()  # only process 0 writes
    assert "on 2 cpu device(s)" in output[0]
    info = json.loads((tmp_path / "p0" / "summary.json").read_text())
    assert info["num_processes"] == 2 and info["num_devices"] == 2
    assert info["num_configs"] == 2 and info["num_seeds"] == 3
    # Two devices reassociate float sums differently from one: within 1e-4, relative, and absolute for explained
    # variance, a difference of near-equal variances.
    assert_same_metrics_csv(tmp_path / "p0" / "metrics.csv", four_devices / "sweep-one-device.csv", rtol=1e-4,
                            atol=1e-4)
    _, rows = read_metrics_csv(tmp_path / "p0" / "metrics.csv")
    assert len(rows) == 2 * 3 * NUM_UPDATES


def _run_two_processes(tmp_path, port: int) -> tuple[list[int], list[str]]:
    """The sweep as two processes joined by a coordinator on `port`: their exit codes and outputs."""
    procs, logs = [], []
    for i in range(2):
        log = open(tmp_path / f"log{i}.txt", "w")
        logs.append(log)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "purejaxppo.run", *SWEEP_ARGS, "--coordinator", f"127.0.0.1:{port}",
             "--num-processes", "2", "--process-id", str(i), "--out", str(tmp_path / f"p{i}")],
            stdout=log, stderr=subprocess.STDOUT, env=_env(None)))
    try:
        codes = [p.wait(timeout=command_limit()) for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
        pytest.fail("the two-process run hung")
    finally:
        for log in logs:
            log.close()
    return codes, [(tmp_path / f"log{i}.txt").read_text() for i in range(2)]


# --- the CLI's --data-parallel ------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_data_parallel_equals_one_device_run(four_devices):
    """The CLI's --data-parallel run over 4 devices equals the same config's plain run on one."""
    code, stdout, stderr = json.loads((four_devices / "cli-dp.json").read_text())
    assert code == 0, stdout + stderr
    assert "on 4 cpu device(s)" in stdout

    dp = four_devices / "cli-dp"
    assert_same_metrics_csv(dp / "metrics.csv", four_devices / "single.csv", rtol=1e-4)
    _, rows = read_metrics_csv(dp / "metrics.csv")
    assert len(rows) == NUM_UPDATES
    info = json.loads((dp / "summary.json").read_text())
    assert info["data_parallel"] is True and info["num_devices"] == 4 and info["num_processes"] == 1


@pytest.mark.parametrize("extra", [["--num-seeds", "2"], ["--sweep", "lr=1e-4,1e-3"]])
def test_cli_data_parallel_refuses_several_runs(tmp_path, extra):
    """Refused while the arguments are checked, before the devices matter: in this process, with its one."""
    out = tmp_path / "out"
    proc = run_main("--data-parallel", "--num-envs", "8", "--total-timesteps", "5120", *extra, "--out", str(out))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "--data-parallel trains one run" in proc.stderr
    assert not out.exists()
