"""The documentation's generated parts: the reference read from the code, and the figures
spliced into the pages.

The reference must follow the code without a docs edit: a key, an option or a column that
exists in the code must appear in the page generated from it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


reference = load(ROOT / "docs" / "_gen" / "reference.py", "docs_reference")
splice = load(ROOT / "scripts" / "splice_figures.py", "splice_figures")


@dataclasses.dataclass
class Inner:
    rate: float = 0.5  # a drop probability


@dataclasses.dataclass
class Section:
    """A section made up for the test."""

    # a key a colleague just added,
    # described on two lines
    new_key: int = 3
    inner: Inner = dataclasses.field(default_factory=Inner)
    plain: str = "x"


def test_a_new_key_is_listed_with_its_type_default_and_comment() -> None:
    keys = {k.path: k for k in reference.leaves(Section(), {"plain": "${oc.env:X,y}"}, "s.")}
    assert list(keys) == ["s.new_key", "s.inner.rate", "s.plain"]
    assert keys["s.new_key"].comment == "a key a colleague just added, described on two lines"
    assert reference.type_name(keys["s.new_key"].hint) == "int"
    assert keys["s.new_key"].default == 3
    assert keys["s.inner.rate"].comment == "a drop probability"
    assert keys["s.plain"].default == "${oc.env:X,y}"  # as typed in the composition, unresolved


def test_a_section_assembled_at_run_time_takes_the_comments_of_the_dataclass_that_declares_it(
) -> None:
    from regbench.store.metrics import Row

    assembled = dataclasses.make_dataclass("Assembled", [("penalty", float, 0.0)])
    assert reference.comment_of(assembled, "penalty") == reference.field_comments(Row)["penalty"]
    assert reference.comment_of(assembled, "penalty")


def test_type_names_read_as_yaml_users_write_them() -> None:
    assert reference.type_name(float | None) == "float or null"
    assert reference.type_name(list[int]) == "list of int"
    assert reference.code(None) == "`null`" and reference.code([1, 2]) == "`[1, 2]`"


def test_allowed_values_are_the_validation_s_own_words() -> None:
    _, schema = reference.compose([])
    assert "(0, 1)" in reference.allowed(schema, "dataset.val_fraction", float)
    assert "mnist5k" in reference.allowed(schema, "dataset.name", str)
    assert reference.allowed(schema, "trainer.deterministic", bool) == ""


@pytest.mark.slow
def test_every_key_of_the_composed_configuration_is_in_the_reference() -> None:
    from omegaconf import OmegaConf

    from regbench.launch.composition import compose

    cfg, _ = compose([])
    task = OmegaConf.to_container(cfg, resolve=False)
    task.pop("hydra")
    page = reference.config_page()

    def walk(node: dict, prefix: str):
        for k, v in node.items():
            yield from walk(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]

    missing = [k for k in walk(task, "") if f"| `{k}` |" not in page]
    assert not missing


def test_every_command_and_option_is_in_the_cli_reference() -> None:
    page = reference.cli_page()
    for command in ("run", "sweep", "summarize", "plot", "report", "resume", "config", "bench",
                    "datasets", "datasets download"):
        assert f"## `regbench {command}`" in page
    for option in ("--baseline", "--resume", "--format", "--columns", "--no-adjust",
                   "--version", "--debug"):
        assert f"`{option}`" in page


@pytest.mark.slow
def test_run_folder_reference_has_every_metrics_column_and_summary_key() -> None:
    from regbench.store.metrics import COLUMNS
    from regbench.store.summary import Summary

    page = reference.run_files_page()
    for name in [*COLUMNS, *(f.name for f in dataclasses.fields(Summary))]:
        assert f"| `{name}` |" in page


def test_figures_are_spliced_between_their_markers(tmp_path: Path) -> None:
    figures = tmp_path / "docs" / "figures"
    figures.mkdir(parents=True)
    (figures / "machine.txt").write_text("date: 2026-01-02\ncpu: a CPU (2 cores)\n")
    (figures / "demo.txt").write_text("$ regbench run\nok\n")
    (figures / "plot.png").write_bytes(b"")
    page = tmp_path / "docs" / "tutorial" / "page.md"
    page.parent.mkdir()
    page.write_text("a\n<!-- figure: demo -->\nold\n<!-- /figure -->\n"
                    "<!-- figure: plot.png -->\n<!-- /figure -->\n"
                    "<!-- figure: bench_speed -->\n<!-- /figure -->\nb\n")
    assert splice.splice(page, figures)
    text = page.read_text()
    assert "old" not in text and "```console\n$ regbench run\nok\n```" in text
    assert "![plot](../figures/plot.png)" in text
    assert "Taken on 2026-01-02 by `scripts/docs_figures.sh` on a CPU (2 cores)" in text
    assert "`scripts/benchmarks.sh speed` writes it here" in text
    assert not splice.splice(page, figures)  # a second pass changes nothing



def test_a_measured_figure_names_its_own_script_machine_and_load(tmp_path: Path) -> None:
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "machine.txt").write_text("date: 2026-01-02\ncpu: the docs' CPU\n")
    (figures / "settle_flagship.txt").write_text("$ regbench sweep experiment=dropout_settle\n")
    (figures / "settle_flagship.machine.txt").write_text(
        "date: 2026-01-03\ncpu: an idle CPU (2 cores)\nload average at the start: 0.20\n")
    page = tmp_path / "page.md"
    page.write_text("<!-- figure: settle_flagship -->\n<!-- /figure -->\n"
                    "<!-- figure: settle_other -->\n<!-- /figure -->\n"
                    "<!-- figure: testing_tiers -->\n<!-- /figure -->\n")
    assert splice.splice(page, figures)
    text = page.read_text()
    assert ("Taken on 2026-01-03 by `scripts/settle_flagship.sh` on an idle CPU (2 cores), ?, "
            "load average 0.20") in text
    assert "Not measured yet: `scripts/settle_flagship.sh` writes it here." in text
    assert "Not measured yet: `scripts/testing_figures.sh --tiers` writes it here." in text

def test_the_docs_build_fails_on_a_placeholder(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    hooks = load(ROOT / "docs" / "_gen" / "hooks.py", "docs_hooks")
    figures = tmp_path / "figures"
    figures.mkdir()
    page = tmp_path / "page.md"
    page.write_text("<!-- figure: bench_speed -->\n<!-- /figure -->\n")
    splice.splice(page, figures)
    with caplog.at_level("WARNING"):
        hooks.check_placeholders("page.md", page.read_text())
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == 1 and "bench_speed holds no figure" in said[0]
    caplog.clear()
    (figures / "bench_speed.txt").write_text("$ regbench bench --full\n")
    (figures / "machine.txt").write_text("date: 2026-01-02\ncpu: a CPU\n")
    splice.splice(page, figures)
    with caplog.at_level("WARNING"):
        hooks.check_placeholders("page.md", page.read_text())
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_a_first_measurement_gets_its_block_at_the_end_of_its_section(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Speed\n\n## GPU\n\nNo GPU yet.\n\n## Regenerate\n\nrun it\n")
    splice.add_block(page, "## GPU", "bench_gpu_check")
    splice.add_block(page, "## GPU", "bench_gpu_check")  # once only
    assert page.read_text() == ("# Speed\n\n## GPU\n\nNo GPU yet.\n\n"
                                "<!-- figure: bench_gpu_check -->\n<!-- /figure -->\n\n"
                                "## Regenerate\n\nrun it\n")


def test_every_page_has_its_cpu_figures_measured() -> None:
    hooks = load(ROOT / "docs" / "_gen" / "hooks.py", "docs_hooks")
    missing = [f"{page.relative_to(ROOT)}: {m.group('name')}"
               for page in (ROOT / "docs").rglob("*.md")
               for m in hooks.FIGURE.finditer(page.read_text())
               if m.group("body").startswith(splice.PLACEHOLDER)
               ]
    assert missing == []


def test_a_marker_naming_no_figure_is_an_error(tmp_path: Path) -> None:
    figures = tmp_path / "figures"
    figures.mkdir()
    page = tmp_path / "page.md"
    page.write_text("<!-- figure: nothing -->\n<!-- /figure -->\n")
    with pytest.raises(SystemExit, match="nothing"):
        splice.splice(page, figures)


def test_the_readme_is_short_and_keeps_the_test_command_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert "python -m pytest -q" in readme
    assert "python -m pytest -q" in (ROOT / ".ci" / "run").read_text()
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).exists(), link


# Worked examples: (page, the command as the page shows it, words on the page that describe
# it, the values those words name, key -> every value the command's jobs take).
WORKED = [
    ("README.md", "regbench run reg=dropout dataset.train_size=500 trainer.epochs=20",
     "drop probability 0.25 after each conv block, 0.5 in the head",
     {"reg.dropout.conv": {0.25}, "reg.dropout.fc": {0.5}, "dataset.train_size": {500},
      "trainer.epochs": {20}}),
    ("README.md", "regbench sweep reg=dropout reg.dropout.fc=0.0,0.5 'seed=range(0,3)' "
                  "dataset.train_size=500 trainer.epochs=20",
     "head dropout 0.0 against 0.5, both with conv dropout 0.25",
     {"reg.dropout.conv": {0.25}, "reg.dropout.fc": {0.0, 0.5}, "seed": {0, 1, 2}}),
    ("README.md", "regbench sweep reg=dropout reg.dropout.fc=0.0,0.5 'seed=range(0,3)' "
                  "dataset.train_size=500 trainer.epochs=20",
     "here head dropout 0.0, conv dropout 0.25 as in every row",
     {"reg.dropout.conv": {0.25}, "reg.dropout.fc": {0.0, 0.5}}),
    pytest.param("README.md", "regbench sweep experiment=dropout_grid",
                 "four FC drop rates x 10 seeds",
                 {"reg.dropout.conv": {0.0}, "reg.dropout.fc": {0.0, 0.25, 0.5, 0.75},
                  "seed": set(range(10))}, marks=pytest.mark.slow, id="README.md: dropout_grid"),
    ("docs/tutorial/reading-the-table.md", "regbench sweep reg=dropout reg.dropout.fc=0.0,0.5 "
     "'seed=range(0,3)' dataset.train_size=500 trainer.epochs=20",
     "dropout 0.0 against 0.5 in the head, both with the `reg=dropout` preset's 0.25 after each "
     "conv block, three seeds each",
     {"reg.dropout.conv": {0.25}, "reg.dropout.fc": {0.0, 0.5}, "seed": {0, 1, 2}}),
    ("docs/tutorial/sweep.md", "regbench sweep reg=dropout reg.dropout.fc=0.0,0.5 "
     "'seed=range(0,3)' dataset.train_size=500 trainer.epochs=20",
     "2 drop rates x 3 seeds (`range(0,3)` is 0, 1, 2) = 6 jobs",
     {"reg.dropout.fc": {0.0, 0.5}, "seed": {0, 1, 2}}),
]


@functools.cache
def resolved(command: str) -> list[dict[str, object]]:
    """Each job's resolved configuration as dotted keys, composed from the real presets."""
    import shlex

    from omegaconf import OmegaConf

    from regbench.launch import sweep
    from regbench.launch.composition import compose
    from regbench.store.run_config import flatten

    _, verb, *args = shlex.split(command)
    jobs, hydra = sweep.expand(sweep.job_overrides(args)) if verb == "sweep" else ([args], [])
    return [flatten(OmegaConf.to_container(OmegaConf.structured(compose([*job, *hydra])[1])))
            for job in jobs]


@pytest.mark.parametrize(("page", "command", "words", "values"), WORKED)
def test_a_worked_example_is_described_by_what_it_runs(
        page: str, command: str, words: str, values: dict[str, set[object]]) -> None:
    text = " ".join((ROOT / page).read_text().split())
    assert command in text and words in text
    configs = resolved(command)
    for key, expected in values.items():
        assert {c[key] for c in configs} == expected, key
