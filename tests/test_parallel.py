"""Several devices and several hosts, on the CPU: sharded sweeps, data parallelism, a two-process program.

JAX fixes its device count when its backend starts, so every multi-device check runs in a subprocess started with
XLA_FLAGS=--xla_force_host_platform_device_count=4 (and the multi-host one as two local processes joined by a
loopback coordinator). Each subprocess saves its results to tmp_path; the test compares them here. A timeout
turns a hang into a failure.
"""

import contextlib
import csv
import json
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import TIMEOUT, cli_env
from conftest import run_cli as run_command

pytestmark = pytest.mark.timeout(900)


def _env(num_devices: int | None) -> dict[str, str]:
    """The commands' environment on the CPU, with `num_devices` devices (JAX's default where None)."""
    env = {k: v for k, v in cli_env(JAX_PLATFORMS="cpu").items() if k != "XLA_FLAGS"}
    if num_devices is not None:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={num_devices}"
    return env


def run_script(tmp_path, code: str, num_devices: int = 4) -> dict:
    """Runs `code` in a fresh python with `num_devices` CPU devices; it writes its results to sys.argv[1]."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    out = tmp_path / "results.npz"
    proc = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True,
                          timeout=TIMEOUT, env=_env(num_devices))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with np.load(out, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def run_cli(*args: str, num_devices: int | None = None) -> subprocess.CompletedProcess:
    return run_command(*args, env=_env(num_devices))


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


# --- a sweep sharded over 4 devices -------------------------------------------------------------------------

SHARDED_SWEEP = """
    import sys
    import jax
    import numpy as np
    from purejaxppo.core.config import PPOConfig
    from purejaxppo.scale.sweep import Sweep

    assert len(jax.devices()) == 4, jax.devices()
    config = PPOConfig(env="CartPole-v1", total_timesteps=512 * 5)
    shapes = []
    job = Sweep(config, num_seeds=3, callback=lambda m: shapes.append([np.shape(v) for v in m.values()]),
                lr=[1e-4, 1e-3])
    sharded = job.run()
    one_job = Sweep(config, num_seeds=3, devices=jax.devices()[:1], lr=[1e-4, 1e-3])
    one = one_job.run()

    leaves = lambda tree: jax.tree.leaves(tree)
    out = {
        "rows_num_devices": [len(x.sharding.device_set) for x in leaves(job.rows)],
        "rows_len": [x.shape[0] for x in leaves(job.rows)],
        "rows_shard_len": [s.data.shape[0] for x in leaves(job.rows) for s in x.addressable_shards],
        "one_rows_num_devices": [len(x.sharding.device_set) for x in leaves(one_job.rows)],
        "one_rows_len": [x.shape[0] for x in leaves(one_job.rows)],
        "callback_shapes": np.array(shapes).reshape(len(shapes), -1),
        "hyperparams_lr": sharded.hyperparams["lr"],
    }
    for name, result in (("sharded", sharded), ("one", one)):
        for k, v in result.metrics.items():
            out[f"{name}/metrics/{k}"] = v
        for i, v in enumerate(leaves(result.params)):
            out[f"{name}/params/{i}"] = v
    np.savez(sys.argv[1], **out)
"""


@pytest.mark.slow
def test_sweep_sharded_over_four_devices_equals_one_device(tmp_path):
    r = run_script(tmp_path, SHARDED_SWEEP)
    # 6 runs padded to 8, two per device; on one device, the 6 runs alone
    assert set(r["rows_num_devices"]) == {4}
    assert set(r["rows_len"]) == {8} and set(r["rows_shard_len"]) == {2}
    assert set(r["one_rows_num_devices"]) == {1} and set(r["one_rows_len"]) == {6}
    # the callback: once per update, every metric [C * S] = [6], the padding rows dropped
    assert r["callback_shapes"].shape[0] == 5
    assert set(r["callback_shapes"].ravel()) == {6}
    np.testing.assert_array_equal(r["hyperparams_lr"], [1e-4, 1e-3])

    metrics = sorted(k.split("/")[-1] for k in r if k.startswith("sharded/metrics/"))
    assert "episode_return" in metrics and "value_loss" in metrics
    for name in metrics:
        a, b = r[f"sharded/metrics/{name}"], r[f"one/metrics/{name}"]
        assert a.shape == b.shape == (2, 3, 5), name
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


# --- one run data-parallel over 4 devices -------------------------------------------------------------------

DATA_PARALLEL = """
    import sys
    import jax
    import numpy as np
    from purejaxppo.core.config import PPOConfig
    from purejaxppo.scale.parallel import make_data_parallel_train
    from purejaxppo.core.train import make_train

    assert len(jax.devices()) == 4, jax.devices()
    config = PPOConfig(env="CartPole-v1", num_envs=8, total_timesteps=1024 * 5)
    dp = make_data_parallel_train(config)(jax.random.key(0))
    single = jax.jit(make_train(config))(jax.random.key(0))

    obs = dp.state.env.obs
    params = jax.tree.leaves(dp.params)
    out = {
        "obs_spec": np.array([str(a) for a in obs.sharding.spec]),
        "obs_num_devices": len(obs.sharding.device_set),
        "obs_shard_rows": [s.data.shape[0] for s in obs.addressable_shards],
        "params_replicated": [p.sharding.is_fully_replicated for p in params],
        "single_num_devices": len(single.state.env.obs.sharding.device_set),
    }
    try:
        make_data_parallel_train(PPOConfig(env="CartPole-v1", num_envs=6, total_timesteps=768))
        out["error"] = ""
    except ValueError as e:
        out["error"] = str(e)
    make_data_parallel_train(PPOConfig(env="CartPole-v1", num_envs=6, total_timesteps=768),
                             devices=jax.devices()[:2])  # 6 envs over 2 devices divide: fine
    for name, o in (("dp", dp), ("single", single)):
        for k, v in o.metrics.items():
            out[f"{name}/metrics/{k}"] = np.asarray(v)
        for i, v in enumerate(jax.tree.leaves(o.params)):
            out[f"{name}/params/{i}"] = np.asarray(v)
    np.savez(sys.argv[1], **out)
"""


@pytest.mark.slow
def test_data_parallel_over_four_devices_equals_one_device_run(tmp_path):
    r = run_script(tmp_path, DATA_PARALLEL)
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
        assert a.shape == b.shape == (5,), name
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


SWEEP_ARGS = ["--num-envs", "4", "--total-timesteps", "5120", "--sweep", "lr=1e-4,1e-3", "--num-seeds", "3",
              "--quiet"]


@pytest.mark.slow
def test_two_process_sweep_equals_single_process(tmp_path):
    with reserved_port() as port:
        codes, output = _run_two_processes(tmp_path, port)
    assert codes == [0, 0], output

    single = run_cli(*SWEEP_ARGS, "--out", str(tmp_path / "single"), num_devices=1)
    assert single.returncode == 0, single.stdout + single.stderr

    assert not (tmp_path / "p1").exists()  # only process 0 writes
    assert "on 2 cpu device(s)" in output[0]
    info = json.loads((tmp_path / "p0" / "summary.json").read_text())
    assert info["num_processes"] == 2 and info["num_devices"] == 2
    single_info = json.loads((tmp_path / "single" / "summary.json").read_text())
    assert single_info["num_processes"] == 1 and single_info["num_devices"] == 1
    assert info["num_configs"] == 2 and info["num_seeds"] == 3
    # Two devices reassociate float sums differently from one: over 10 updates that stays within 1e-4, relative,
    # and absolute for explained variance, a difference of near-equal variances.
    assert_same_metrics_csv(tmp_path / "p0" / "metrics.csv", tmp_path / "single" / "metrics.csv", rtol=1e-4,
                            atol=1e-4)
    _, rows = read_metrics_csv(tmp_path / "p0" / "metrics.csv")
    assert len(rows) == 2 * 3 * 10


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
        codes = [p.wait(timeout=TIMEOUT) for p in procs]
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
def test_cli_data_parallel_equals_one_device_run(tmp_path):
    common = ["--num-envs", "8", "--total-timesteps", "5120", "--quiet"]
    dp = run_cli("--data-parallel", *common, "--out", str(tmp_path / "dp"), num_devices=4)
    assert dp.returncode == 0, dp.stdout + dp.stderr
    assert "on 4 cpu device(s)" in dp.stdout
    plain = run_cli(*common, "--out", str(tmp_path / "plain"))
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "on 1 cpu device(s)" in plain.stdout

    assert_same_metrics_csv(tmp_path / "dp" / "metrics.csv", tmp_path / "plain" / "metrics.csv", rtol=1e-4)
    _, rows = read_metrics_csv(tmp_path / "dp" / "metrics.csv")
    assert len(rows) == 5120 // (8 * 128)
    info = json.loads((tmp_path / "dp" / "summary.json").read_text())
    assert info["data_parallel"] is True and info["num_devices"] == 4


@pytest.mark.parametrize("extra", [["--num-seeds", "2"], ["--sweep", "lr=1e-4,1e-3"]])
def test_cli_data_parallel_refuses_several_runs(tmp_path, extra):
    out = tmp_path / "out"
    proc = run_cli("--data-parallel", "--num-envs", "8", "--total-timesteps", "5120", *extra, "--out", str(out),
                   num_devices=4)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "--data-parallel trains one run" in proc.stderr
    assert not out.exists()
