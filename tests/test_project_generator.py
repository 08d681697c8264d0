"""projects/generate.py: the committed variant yamls are its output byte for byte; ``--check`` catches stale ones."""
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from conftest import PROJECTS_DIR

GENERATOR = os.path.join(PROJECTS_DIR, "generate.py")


def load_generator():
    """projects/generate.py as a module (projects/ is not a package)."""
    spec = importlib.util.spec_from_file_location("projects_generate", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_generator(root, *args):
    """Run the generator as a user does, on the projects folder ``root``."""
    return subprocess.run([sys.executable, GENERATOR, *args, "--root", str(root)], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def projects_copy(tmp_path):
    """A copy of projects/ (templates, generator and yamls) to spoil."""
    root = tmp_path / "projects"
    shutil.copytree(PROJECTS_DIR, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_committed_yamls_are_the_generators_output():
    gen = load_generator()
    outputs = gen.generate()
    assert len(outputs) == sum(len(f.variants) for f in gen.FAMILIES) > 0
    for rel, text in sorted(outputs.items()):
        with open(os.path.join(PROJECTS_DIR, rel), "rb") as f:
            assert f.read() == text.encode("utf-8"), f"projects/{rel} is stale: run python projects/generate.py"
    assert gen.orphans(PROJECTS_DIR, outputs) == []


def test_every_generated_yaml_names_its_template_and_the_command():
    gen = load_generator()
    for family in gen.FAMILIES:
        for variant in family.variants:
            with open(os.path.join(PROJECTS_DIR, gen.output_path(family, variant)), encoding="utf-8") as f:
                first = f.readline()
            assert f"projects/{gen.template_path(family)}" in first and "python projects/generate.py" in first


def test_check_fails_listing_a_modified_copy_and_a_rewrite_restores_it(projects_copy):
    assert run_generator(projects_copy, "--check").returncode == 0
    target = projects_copy / "albef" / "vqa_fs.yaml"
    text = target.read_text(encoding="utf-8")
    assert "init_lr: 2e-5" in text
    target.write_text(text.replace("init_lr: 2e-5", "init_lr: 3e-5"), encoding="utf-8")
    (projects_copy / "demo" / "clip_pretrain_gc.yaml").unlink()
    check = run_generator(projects_copy, "--check")
    assert check.returncode == 1
    assert check.stdout.splitlines() == ["stale: albef/vqa_fs.yaml (differs)",
                                         "stale: demo/clip_pretrain_gc.yaml (missing)"]
    assert run_generator(projects_copy).returncode == 0
    assert target.read_text(encoding="utf-8") == text
    assert run_generator(projects_copy, "--check").returncode == 0


def test_check_fails_on_a_template_edit_and_an_orphan(projects_copy):
    template = projects_copy / "_templates" / "albef" / "snli_ve.yaml.in"
    template.write_text(template.read_text(encoding="utf-8").replace("max_epoch: 10", "max_epoch: 11"),
                        encoding="utf-8")
    shutil.copy(projects_copy / "albef" / "vqa_gc.yaml", projects_copy / "albef" / "vqa_old.yaml")
    check = run_generator(projects_copy, "--check")
    assert check.returncode == 1
    stale = {line.split()[1] for line in check.stdout.splitlines()}
    assert stale == {f"albef/snli_ve_{v}.yaml" for v in ("baseline", "fs", "bb", "gc", "all")} | {"albef/vqa_old.yaml"}


@pytest.mark.parametrize("template, error", [
    ("{{if baseline}}\n{{if baseline}}\n{{end}}\n", "nested"),
    ("{{if baseline}}\na: 1\n", "without"),
    ("{{end}}\n", "outside"),
    ("a: {{nope}}\n", "unknown slot"),
])
def test_template_mistakes_are_errors(template, error):
    gen = load_generator()
    with pytest.raises(ValueError, match=error):
        gen.render(gen.FAMILIES[0], "fs", template)
