"""The summary cache of `validate` and `list` (archspec/summary_cache.py): a hit imports neither
pydantic nor YAML and prints what a fresh check prints; any change to what the answer depends on
(the spec, a base, an ARCHSPEC_* limit) is seen; invalid specs and in-process families are never
stored."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT

SPEC = textwrap.dedent("""\
    base: base.yaml
    name: cached
    stages:
      depths: [1, 1]
""")
BASE = textwrap.dedent("""\
    name: base
    stages:
      depths: [2, 2]
      widths: [32, 64]
    block:
      type: basic
""")


def run(code: str, cache, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(ROOT), "ARCHSPEC_CACHE_DIR": str(cache), **env}
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True,
                          text=True, timeout=120)


VALIDATE = textwrap.dedent("""\
    import sys
    from archspec.cli import main
    status = main(["validate", sys.argv[-1] if len(sys.argv) > 1 else "{spec}"])
    print("imported pydantic:", "pydantic" in sys.modules, "yaml:", "yaml" in sys.modules)
    sys.exit(status)
""")


@pytest.fixture
def files(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "spec.yaml").write_text(SPEC)
    return tmp_path


def validate(files, cache, **env):
    return run(VALIDATE.format(spec=files / "spec.yaml"), cache, **env)


def fresh(files) -> str:
    """What validate prints without the cache (the reference answer)."""
    proc = validate(files, files / "unused", ARCHSPEC_NO_CACHE="1")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()[0]


def test_a_hit_prints_the_same_and_imports_no_pydantic(files, tmp_path):
    cache = tmp_path / "cache"
    first, second = validate(files, cache), validate(files, cache)
    assert first.returncode == second.returncode == 0
    assert first.stdout.splitlines()[0] == second.stdout.splitlines()[0] == fresh(files)
    assert "imported pydantic: True" in first.stdout
    assert "imported pydantic: False yaml: False" in second.stdout
    assert len(list((cache / "summaries").glob("*.json"))) == 1


@pytest.mark.parametrize("changed", ["spec.yaml", "base.yaml"])
def test_editing_the_spec_or_a_base_is_seen(files, tmp_path, changed):
    cache = tmp_path / "cache"
    before = validate(files, cache).stdout
    path = files / changed
    path.write_text(path.read_text().replace("[1, 1]", "[2, 1]").replace("[32, 64]", "[32, 48]"))
    after = validate(files, cache)
    assert after.stdout.splitlines()[0] != before.splitlines()[0]
    assert after.stdout.splitlines()[0] == fresh(files)


def test_a_limit_in_the_environment_is_part_of_the_key(files, tmp_path):
    cache = tmp_path / "cache"
    assert validate(files, cache).returncode == 0
    limited = validate(files, cache, ARCHSPEC_MAX_BLOCKS="1")  # the spec has 2 blocks
    assert limited.returncode == 2 and "over the limit of 1 blocks" in limited.stderr


def test_invalid_specs_are_never_stored_and_a_corrupt_cache_is_ignored(files, tmp_path):
    cache = tmp_path / "cache"
    (files / "spec.yaml").write_text(SPEC.replace("[1, 1]", "[1, 0]"))
    for _ in range(2):
        proc = validate(files, cache)
        assert proc.returncode == 2 and "spec.yaml:4:" in proc.stderr
    assert not list(cache.glob("summaries/*.json"))
    (files / "spec.yaml").write_text(SPEC)
    assert validate(files, cache).returncode == 0
    for entry in cache.glob("summaries/*.json"):
        entry.write_text("{not json")
    again = validate(files, cache)
    assert again.returncode == 0 and again.stdout.splitlines()[0] == fresh(files)


def test_a_family_imported_in_process_turns_storing_off(files, tmp_path):
    code = textwrap.dedent(f"""\
        import sys
        sys.path.insert(0, {str(ROOT / "docs" / "examples" / "extending")!r})
        import archspec_preact  # a family neither archspec nor an entry point provides
        from archspec.cli import main
        sys.exit(main(["validate", {str(files / "spec.yaml")!r}]))
    """)
    cache = tmp_path / "cache"
    assert run(code, cache).returncode == 0
    assert not list(cache.glob("summaries/*.json"))


def test_list_uses_it_too(tmp_path):
    cache = tmp_path / "cache"
    code = ("import sys; from archspec.cli import main; main(['list', 'resnet18', 'resnet50']);"
            "print('pydantic' in sys.modules)")
    first, second = run(code, cache), run(code, cache)
    assert first.stdout.splitlines()[:-1] == second.stdout.splitlines()[:-1]
    assert first.stdout.splitlines()[-1] == "True" and second.stdout.splitlines()[-1] == "False"


def test_notes_are_kept_per_working_folder(tmp_path):
    """A note names files relative to the working folder: a summary stored from one folder is
    not shown in another (there the paths would be wrong)."""
    cache = tmp_path / "cache"
    spec = ROOT / "specs" / "ecaresnet26t.yaml"  # its notes point at a base's source line
    code = f"import sys; from archspec.cli import main; sys.exit(main(['validate', {str(spec)!r}]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ARCHSPEC_CACHE_DIR": str(cache)}
    outs = []
    for folder in (ROOT, tmp_path, tmp_path):
        proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=folder,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
    fresh = subprocess.run([sys.executable, "-c", code], env={**env, "ARCHSPEC_NO_CACHE": "1"},
                           cwd=tmp_path, capture_output=True, text=True, timeout=120).stdout
    assert outs[1] == outs[2] == fresh
    assert len(list(cache.glob("summaries/*.json"))) == 2
