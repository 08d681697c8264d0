"""benchmarks/run_store.py: keys of exact configurations, resumable results, claims shared by processes."""
import json
import os
import subprocess
import sys

from benchmarks.run_store import RunStore, run_key


def test_key_is_the_exact_configuration():
    a = {"framework": "clip", "latent": {"bridge": {"weight": 1.0, "t": 0.25}}, "seed": 0}
    b = {"seed": 0, "latent": {"bridge": {"t": 0.25, "weight": 1.0}}, "framework": "clip"}
    assert run_key(a) == run_key(b)
    assert run_key(a) != run_key(dict(a, seed=1))
    assert run_key(a) != run_key({**a, "latent": {"bridge": {"weight": 0.3, "t": 0.25}}})


def test_put_get_and_resume_from_disk(tmp_path):
    store = RunStore(str(tmp_path))
    spec = {"x": 1}
    assert store.get(spec) is None
    assert store.claim(spec)
    store.put(spec, {"acc": 50.0})
    again = RunStore(str(tmp_path))  # a new process reads what is done
    assert again.get(spec) == {"acc": 50.0}
    assert not again.claim(spec)  # done: nothing to compute
    assert list(again.pending([spec, {"x": 2}])) == [{"x": 2}]


def test_a_cut_line_is_not_a_result(tmp_path):
    store = RunStore(str(tmp_path))
    store.put({"x": 1}, {"acc": 1.0})
    with open(store.path, "a") as f:
        f.write('{"key": "abc", "spec": {"x"')  # a writer killed mid-line
    assert RunStore(str(tmp_path)).get({"x": 1}) == {"acc": 1.0}
    assert len(RunStore(str(tmp_path)).results()) == 1


def test_claims_split_work_between_processes_and_dead_claims_are_taken_over(tmp_path):
    first, second = RunStore(str(tmp_path)), RunStore(str(tmp_path))
    spec = {"x": 1}
    assert first.claim(spec)
    assert not second.claim(spec)  # held by a live process (this one)
    first.release(spec)
    assert second.claim(spec)
    second.release(spec)
    # a claim left by a process that has exited
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(proc.stdout)
    with open(os.path.join(first.claims, run_key(spec)), "w") as f:
        json.dump({"pid": dead_pid, "host": __import__("socket").gethostname()}, f)
    assert second.claim(spec)
