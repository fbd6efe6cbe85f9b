"""The reference pages, generated from the code at every docs build.

Nothing here lists a command, a key, a preset or a column by hand: the CLI comes from the
Typer app (through click), the configuration from the composed default configuration and
its dataclasses (every field, wherever a registry put it), the allowed values from what
the validation says when it refuses a value, the presets from conf/, the files' columns
from the dataclasses that write them. A key added to the schema appears here without a
docs edit. Each function returns one page of Markdown.

docs/_gen/pages.py (run by the mkdocs-gen-files plugin) writes the pages; the tests import
this module directly.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import importlib
import importlib.util
import inspect
import io
import json
import logging
import re
import sys
import tempfile
import textwrap
import tokenize
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import regbench

LOG = logging.getLogger("mkdocs.plugins.regbench")  # a warning fails `mkdocs build --strict`


# ------------------------------------------------------------------------------ helpers


def cell(text: Any) -> str:
    """Text for one Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;")


def code(value: Any) -> str:
    """A value as inline code, in the YAML spelling a user types (null, true, [1, 2])."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(code(v).strip("`") for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {code(v).strip('`')}" for k, v in value.items()) + "}"
    elif isinstance(value, str) and value == "":
        text = "''"
    else:
        text = str(value)
    return f"`{text.replace('|', '&#124;')}`"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def type_name(hint: Any) -> str:
    """'float or null', 'list of int', 'str' for a type hint."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        named = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(named + (["null"] if type(None) in args else []))
    if origin in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return "list of " + (type_name(args[0]) if args else "values")
    if origin is dict:
        return "mapping"
    if dataclasses.is_dataclass(hint):
        return hint.__name__
    return getattr(hint, "__name__", str(hint))


# -------------------------------------------------------------- comments of dataclass fields


def _comments(source: str) -> dict[int, str]:
    """Line number (1-based) -> the text of the comment on that line."""
    out: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def field_comments(cls: type) -> dict[str, str]:
    """What the source says about each field of a dataclass: the comment on its line and the
    comment lines right above it. {} when the class has no source (made at run time)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments = _comments(source)
    lines = source.splitlines()
    out: dict[str, str] = {}
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    for node in body.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            above = []
            n = node.lineno - 1
            while n >= 1 and lines[n - 1].strip().startswith("#"):
                above.insert(0, comments.get(n, ""))
                n -= 1
            parts = above + ([comments[node.end_lineno]] if node.end_lineno in comments else [])
            if parts:
                out[node.target.id] = " ".join(parts)
    return out


def _regbench_dataclasses() -> Iterator[type]:
    """Every dataclass defined in an imported regbench module."""
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("regbench", "hydra_plugins") and module is not None:
            for obj in vars(module).values():
                if (isinstance(obj, type) and dataclasses.is_dataclass(obj)
                        and obj.__module__ == name):
                    yield obj


# The training loop's own dataclasses (an epoch's step, a member): never a key's meaning.
RUNTIME_MODULES = ("regbench.training.session", "regbench.training.loop")


def comment_of(cls: type, name: str) -> str:
    """The source comment of field `name` of `cls`; for a dataclass assembled at run time
    (a registry's section), that of the one dataclass that declares a field of that name
    and type."""
    own = field_comments(cls).get(name)
    if own is not None or _has_source(cls):
        return own or ""
    hint = typing.get_type_hints(cls).get(name)
    found = {c: field_comments(c)[name] for c in _regbench_dataclasses()
             if c is not cls and not c.__module__.startswith(RUNTIME_MODULES)
             and name in field_comments(c) and _has_source(c)
             and typing.get_type_hints(c).get(name) == hint}
    return next(iter(found.values())) if len(set(found.values())) == 1 else ""


def _has_source(cls: type) -> bool:
    try:
        inspect.getsource(cls)
        return True
    except (OSError, TypeError):
        return False


def doc_of(cls: type) -> str:
    """A class's own docstring (not the one dataclasses writes: 'Name(field: type, ...)')."""
    doc = cls.__dict__.get("__doc__") or ""
    return "" if doc.startswith(cls.__name__ + "(") else inspect.cleandoc(doc)


# ---------------------------------------------------------------------------------- the CLI


def cli_command() -> Any:
    """The regbench command line as click sees it."""
    import typer

    from regbench.cli import app

    return typer.main.get_command(app)


def _help_markdown(text: str) -> str:
    """A command's help text as Markdown: prose paragraphs; an 'Example(s):' paragraph as a
    console block; another paragraph of a heading line and indented lines as a list."""
    out: list[str] = []
    for para in inspect.cleandoc(text or "").split("\n\n"):
        head, _, rest = para.partition("\n")
        indented = bool(rest) and all(ln.startswith(" ") for ln in rest.splitlines() if ln.strip())
        if head.strip().startswith("Example"):
            out.append(f"**{head.strip()}**")
            if rest.strip():
                out.append("```console\n" + "\n".join(
                    (f"    {ln.strip()}" if ln.startswith(" " * 4) else f"$ {ln.strip()}")
                    for ln in textwrap.dedent(rest).splitlines() if ln.strip()) + "\n```")
        elif out and out[-1].startswith("```console") and para.strip().startswith("regbench"):
            out[-1] = out[-1][:-3] + "$ " + para.strip() + "\n```"  # an example of its own
        elif head.rstrip().endswith(":") and indented:
            out.append(_escape(head.strip()) + "\n\n" + "\n".join(
                f"- {_escape(ln.strip())}" for ln in rest.splitlines() if ln.strip()))
        else:
            out.append(_escape(" ".join(para.split())))
    return "\n\n".join(out)


def _escape(text: str) -> str:
    """Prose for Markdown: angle brackets shown as typed, not read as HTML."""
    return text.replace("<", "&lt;")


def _param_row(param: Any, ctx: Any) -> list[str]:
    """[name, what it takes, default, help] of one argument or option."""
    descriptor = getattr(param, "type_descriptor", None)
    hint = getattr(descriptor, "annotation", None)
    if param.param_type_name == "argument":
        name = f"`{(param.metavar or param.name).upper()}`"
        kind = "argument" + (", several" if param.nargs == -1 else "")
        kind += "" if param.required else ", optional"
    else:
        name = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
        kind = "flag" if getattr(param, "is_flag", False) else (
            f"`{param.metavar}`" if param.metavar else type_name(hint).upper() if hint else "VALUE")
    default = None if param.required else param.default
    shown = "" if default in (None, False, ()) or not getattr(param, "show_default", True) \
        else code(default)
    return [name, kind, shown, cell(getattr(param, "help", None) or "")]


def _context(cmd: Any, name: str) -> Any:
    """A click context for a command (Typer may carry its own copy of click)."""
    return cmd.context_class(cmd, info_name=name)


def _commands(group: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    yield path, group
    if hasattr(group, "list_commands"):
        ctx = _context(group, path[-1])
        for name in group.list_commands(ctx):
            sub = group.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _commands(sub, [*path, name])


def cli_page() -> str:
    root = cli_command()
    out = []
    for path, cmd in _commands(root, ["regbench"]):
        ctx = _context(cmd, " ".join(path))
        out.append(f"## `{' '.join(path)}`\n")
        pieces = " ".join(cmd.collect_usage_pieces(ctx))
        out.append(f"```\n{' '.join(path)} {pieces}\n```\n")
        out.append(_help_markdown(cmd.help or "") + "\n")
        params = [p for p in cmd.get_params(ctx) if not getattr(p, "hidden", False)
                  and "--help" not in getattr(p, "opts", [])]
        if params:
            out.append(table(["name", "takes", "default", "meaning"],
                             [_param_row(p, ctx) for p in params]))
        if hasattr(cmd, "list_commands"):
            subs = [n for n in cmd.list_commands(ctx) if not cmd.get_command(ctx, n).hidden]
            out.append("Commands: " + ", ".join(f"`{n}`" for n in subs) + ".\n")
    return "\n".join(out)


# -------------------------------------------------------------------------- configuration


def compose(overrides: list[str]) -> tuple[dict[str, Any], Any]:
    """(the composed configuration as typed, unresolved; the checked dataclass tree)."""
    from omegaconf import OmegaConf

    from regbench.launch.composition import compose as regbench_compose

    cfg, schema = regbench_compose(overrides)
    raw = OmegaConf.to_container(cfg, resolve=False)
    raw.pop("hydra", None)
    return raw, schema


@dataclasses.dataclass
class Key:
    """One leaf key of the configuration."""

    path: str
    hint: Any
    default: Any
    comment: str
    owner: type  # the dataclass that holds it


def leaves(node: Any, raw: dict[str, Any], prefix: str = "") -> Iterator[Key]:
    """Every leaf key below a dataclass instance, in field order, with its composed default."""
    hints = typing.get_type_hints(type(node))
    for f in dataclasses.fields(node):
        path = f"{prefix}{f.name}"
        value = getattr(node, f.name)
        if dataclasses.is_dataclass(value):
            yield from leaves(value, raw.get(f.name) or {}, path + ".")
        else:
            yield Key(path, hints.get(f.name), raw.get(f.name, value),
                      comment_of(type(node), f.name), type(node))


# Values no check accepts for a key of each type, to read what the validation allows.
PROBES: dict[str, list[Any]] = {"str": ["?"], "int": [-1, 0], "float": [-1.0, 1.5, 0.0],
                                "list": [[], [-1.0, -1.0], [2.0, 2.0]]}


def _probes(hint: Any) -> list[Any]:
    named = type_name(hint)
    out: list[Any] = []
    for kind, values in PROBES.items():
        if named.startswith(kind) or f" {kind}" in named:
            out += values
    return out


def allowed(schema: Any, key: str, hint: Any) -> str:
    """What the validation says is allowed for a key: the checks' own words when they
    refuse a value that nothing accepts (several checks: each one's words)."""
    from regbench.errors import ConfigError
    from regbench.training.validation import validate

    said: list[str] = []
    for bad in _probes(hint):
        trial = copy.deepcopy(schema)
        *parents, last = key.split(".")
        node = trial
        for p in parents:
            node = getattr(node, p)
        try:
            setattr(node, last, bad)
            validate(trial)
        except ConfigError as e:
            text = str(e)
            if text.startswith(f"{key}=") and "is not allowed: " in text:
                words = text.split("is not allowed: ", 1)[1]
                words = re.sub(r"^known values are ", "one of ", words)
                if words not in said:
                    said.append(words)
        except Exception:  # a probe the checks cannot even compare: nothing learnt
            continue
    return "; ".join(said)


def _section_table(schema: Any, raw: dict[str, Any], section: str | None) -> str:
    node = schema if section is None else getattr(schema, section)
    sub_raw = raw if section is None else raw.get(section, {})
    prefix = "" if section is None else section + "."
    rows = []
    for key in leaves(node, sub_raw, prefix):
        if section is None and "." in key.path:
            continue
        said = allowed(schema, key.path, key.hint)
        meaning = "<br>".join(part for part in (cell(key.comment),
                                                f"**allowed:** {cell(said)}" if said else "") if part)
        rows.append([f"`{key.path}`", cell(type_name(key.hint)), code(key.default), meaning])
    return table(["key", "type", "default", "meaning"], rows)


def stored_schemas(group: str) -> list[type]:
    """The dataclasses registered in Hydra's ConfigStore for a config group (each model's
    own keys), in the order they were registered."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    entries = ConfigStore.instance().repo.get(group, {})
    types_ = [OmegaConf.get_type(e.node) for e in entries.values() if hasattr(e, "node")]
    return list(dict.fromkeys(t for t in types_ if t is not None and dataclasses.is_dataclass(t)))


def config_dir() -> Path:
    return Path(regbench.__file__).parent / "conf"


def groups() -> list[str]:
    """The config groups: conf/'s folders that hold presets."""
    return sorted(p.name for p in config_dir().iterdir() if p.is_dir() and any(p.glob("*.yaml")))


def presets(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def config_page() -> str:
    raw, schema = compose([])
    out = []
    top = [f.name for f in dataclasses.fields(schema)
           if not dataclasses.is_dataclass(getattr(schema, f.name))]
    if top:
        out.append("## Top-level keys\n")
        out.append(_section_table(schema, raw, None))
    for f in dataclasses.fields(schema):
        section = getattr(schema, f.name)
        if not dataclasses.is_dataclass(section):
            continue
        out.append(f"## `{f.name}`\n")
        doc = doc_of(type(section))
        if doc:
            out.append(doc + "\n")
        if f.name in groups():
            out.append(f"Presets: {', '.join(f'`{f.name}={p}`' for p in presets(f.name))} "
                       f"(see [presets](presets.md#{f.name})).\n")
        out.append(_section_table(schema, raw, f.name))
        # other schemas registered for this section (another model's keys)
        for other in stored_schemas(f.name):
            if isinstance(section, other):
                continue
            trial = copy.deepcopy(schema)
            setattr(trial, f.name, other())
            out.append(f"### `{f.name}` as `{other.__name__}`\n")
            if doc_of(other):
                out.append(doc_of(other) + "\n")
            out.append(_section_table(trial, {}, f.name))
    return "\n".join(out)


# ------------------------------------------------------------------------------- presets


def _preset_comments(text: str) -> tuple[str, str]:
    """(the file's leading comment block, the YAML below it)."""
    lines = text.splitlines()
    head = []
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        line = lines.pop(0)
        if line.startswith("#"):
            head.append(line.lstrip("#").strip())
        elif head:
            head.append("")
    return "\n".join(head).strip(), "\n".join(lines).strip()


def presets_page() -> str:
    out = []
    root = config_dir()
    if (root / "config.yaml").exists():
        out.append("## The defaults (`config.yaml`)\n")
        out.append("```yaml\n" + (root / "config.yaml").read_text().strip() + "\n```\n")
    for group in groups():
        out.append(f"## {group}\n")
        for name in presets(group):
            path = root / group / f"{name}.yaml"
            head, body = _preset_comments(path.read_text())
            out.append(f"### `{group}={name}`\n")
            if head:
                out.append(" ".join(head.split()) + "\n")
            out.append("```yaml\n" + (body or "# (the schema's defaults)") + "\n```\n")
    return "\n".join(out)


# ------------------------------------------------------------------------- files of a run


def _dataclass_table(cls: type, exclude: tuple[str, ...] = ()) -> str:
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        if f.default is not dataclasses.MISSING:
            default = code(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = code(f.default_factory())
        else:
            default = "" if f.init else "derived"
        rows.append([f"`{f.name}`", cell(type_name(hints[f.name])), default,
                     cell(comment_of(cls, f.name))])
    return table(["field", "type", "default", "meaning"], rows)


def files_section() -> str:
    """Every file name the package writes (its ``*_FILE`` constants), with the comment the
    code gives it."""
    import pkgutil

    rows: dict[str, list[str]] = {}
    for info in pkgutil.walk_packages(regbench.__path__, "regbench."):
        if ".conf" in info.name or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        comments = _module_comments(module)
        for name, value in vars(module).items():
            if name.endswith("_FILE") and isinstance(value, str) and comments.get(name):
                rows.setdefault(value, [f"`{value}`", cell(comments[name]), f"`{info.name}`"])
    return table(["file", "what it is", "written by"], list(rows.values()))


def _module_comments(module: types.ModuleType) -> dict[str, str]:
    """Module-level NAME -> the comment on its line or right above it."""
    source = inspect.getsource(module)
    comments = _comments(source)
    lines = source.splitlines()
    out = {}
    for node in ast.parse(source).body:
        target = (node.targets[0] if isinstance(node, ast.Assign) else
                  node.target if isinstance(node, ast.AnnAssign) else None)
        if isinstance(target, ast.Name):
            parts = []
            n = node.lineno - 1
            while n >= 1 and lines[n - 1].strip().startswith("#"):
                parts.insert(0, comments.get(n, ""))
                n -= 1
            if node.end_lineno in comments:
                parts.append(comments[node.end_lineno])
            out[target.id] = " ".join(parts)
    return out


def run_files_page() -> str:
    """The files' names, then every module of regbench.store (each owns one file) with its
    docstring and a table of each dataclass it defines: the file's columns or keys."""
    import pkgutil

    from regbench import store

    out = ["## The files\n", files_section()]
    for info in pkgutil.iter_modules(store.__path__, "regbench.store."):
        module = importlib.import_module(info.name)
        classes = [c for c in vars(module).values() if isinstance(c, type)
                   and dataclasses.is_dataclass(c) and c.__module__ == info.name]
        if not classes:
            continue
        doc = inspect.cleandoc(module.__doc__ or "")
        title, _, rest = doc.partition("\n")
        name, _, what = title.partition(": ")
        out.append(f"## `{name}`\n" if what else f"## `{info.name}`\n")
        out.append(_escape(doc if not what else what[:1].upper() + what[1:] + "\n" + rest) + "\n")
        for cls in classes:
            out.append(f"### `{cls.__name__}`\n")
            if doc_of(cls):
                out.append(_escape(doc_of(cls)) + "\n")
            out.append(_dataclass_table(cls))
    return "\n".join(out)


# ------------------------------------------------------------------------ the comparison


# What the comparison's column names are made of. A column the patterns do not cover is
# still listed, with its name only.
COLUMN_PATTERNS: list[tuple[str, str]] = [
    (r"config", "the configuration's label: the keys that differ between the groups"),
    (r"seeds", "distinct seeds of the configuration that finished"),
    (r"pairs", "seeds paired with the baseline's (the differences use these)"),
    (r"best", "true on the row with the highest mean val accuracy (listed first)"),
    (r"baseline", "true on the baseline's row (its difference columns are empty)"),
    (r"at_chance_runs", "runs of the configuration that did not learn: val accuracy within "
                        "noise of chance (kept in the means, marked `(did not learn)`)"),
    (r"(?P<m>.+)_mean", "mean over seeds of {m}"),
    (r"(?P<m>.+)_std", "sample standard deviation (ddof=1) over seeds of {m}"),
    (r"d_(?P<m>.+)_low", "low end of the interval of the difference in {m}"),
    (r"d_(?P<m>.+)_high", "high end of the interval of the difference in {m}"),
    (r"d_(?P<m>.+)_p", "p-value of the paired test of the difference in {m}"),
    (r"d_(?P<m>.+)", "mean paired difference of {m} against the baseline (configuration − baseline)"),
    (r"(?P<m>.+)_established", "the difference of {m} is established (adjusted verdict)"),
    (r"(?P<m>.+)_within_noise", "the difference of {m} cannot be told from 0 with these seeds"),
    (r"d_(?P<m>.+)_level", "confidence level of the interval of the difference in {m}"),
    (r"(?P<m>.+)_seeds_to_equivalent",
     "estimated seeds (pairs) that would show the difference of {m} equivalent (within ± the margin)"),
    (r"(?P<m>.+)_equivalent", "the difference of {m} lies within ± the margin (equivalence)"),
    (r"(?P<m>.+)_verdict", "the verdict on {m}: established, equivalent or undecided"),
    (r"(?P<m>.+)_seeds_needed", "estimated seeds (pairs) that would resolve the difference of {m}"),
]


# The top-level keys of `summarize --format json`; a key not here is listed with its type.
JSON_KEYS = {
    "baseline": "the baseline configuration's label (null when there is none)",
    "note": "why there is no baseline, when there is none",
    "adjusted": "whether intervals and verdicts are adjusted for the number of comparisons",
    "comparisons": "k, the configurations compared with the baseline",
    "margins_pts": "the equivalence margin of each compared metric, in points",
    "method": "the statistical method of the intervals and verdicts, as the caption names it",
    "duplicates": "one warning per seed that was run more than once (the newest run counts)",
    "configurations": "the rows: one object per configuration, with the CSV's columns",
    "not_averaged": "the runs left out: failed, diverged, unfinished, pruned or damaged; "
                    "each with its path, status, one-line error, seed and label",
}


def describe_column(name: str, sources: dict[str, str]) -> str:
    for pattern, words in COLUMN_PATTERNS:
        m = re.fullmatch(pattern, name)
        if m:
            metric = m.groupdict().get("m")
            what = sources.get(metric, f"`{metric}`") if metric else ""
            return words.format(m=what)
    return ""


def metric_sources() -> dict[str, str]:
    """Each per-run metric of the comparison -> where it is read from."""
    from regbench.study import compare

    out = {}
    for name, (key, sub) in getattr(compare, "RUN_METRICS", {}).items():
        out[name] = f"`{name}` (summary.json `{key}{'.' + sub if sub else ''}`)"
    for name in getattr(compare, "CURVE_METRICS", ()):
        out[name] = f"`{name}` (from metrics.csv)"
    return out


def sample_comparison() -> dict[str, Any]:
    """The JSON of `regbench summarize` over a made-up study: two configurations of three
    seeds each, written as a run writes its folder. The columns are the real ones (the CSV
    has the same, in the same order)."""
    import random

    from omegaconf import OmegaConf
    from typer.testing import CliRunner

    from regbench.cli import app
    from regbench.store import runs
    from regbench.store.metrics import MetricsLog, Row
    from regbench.store.summary import Summary

    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        for j, fc in enumerate((0.0, 0.5)):
            _, schema = compose([f"reg.dropout.fc={fc}"] if fc else [])
            for seed in range(3):
                schema.seed = seed
                d = Path(tmp) / f"{j}{seed}"
                d.mkdir()
                runs.write_atomic(d / runs.CONFIG_FILE, OmegaConf.to_yaml(OmegaConf.structured(schema)))
                log = MetricsLog(d / runs.METRICS_FILE)
                rows = []
                for epoch in (1, 2):
                    acc = 0.8 + 0.05 * epoch + 0.02 * fc + rng.random() / 100
                    rows.append(Row(epoch=epoch, train_loss=0.5 / epoch, train_acc=acc + 0.03,
                                    val_loss=0.6 / epoch, val_acc=acc))
                    log.append(rows[-1])
                Summary(status="completed", epochs_run=2, best_epoch=2, kept_epoch=2,
                        best=rows[-1], last=rows[-1], test_loss=0.3, test_acc=0.9,
                        test_ece=0.02, convergence_epoch=2, wall_time_s=1.0,
                        train_images_per_s=100.0 + rng.random(), seed=seed,
                        val_loss_rise=0.0).write(d)
        result = CliRunner().invoke(app, ["summarize", tmp, "--format", "json"])
    if result.exit_code:
        raise RuntimeError(f"summarize failed on the sample study: {result.output}")
    return json.loads(result.stdout)


def comparison_page() -> str:
    from regbench.present import tables

    obj = sample_comparison()
    header = list(obj["configurations"][0])
    sources = metric_sources()
    out = []
    out.append("## Terminal and markdown columns (`--columns`)\n")
    default = getattr(tables, "DEFAULT_COLUMNS", ())
    rows = [[f"`{c.name}`", cell(c.header.replace("|", " ")),
             "yes" if c.name in default else "", "yes" if c.difference else ""]
            for c in tables.COLUMNS.values()]
    out.append("`--columns all` shows every one; `--columns NAME,NAME` chooses them; the "
               "default set is marked.\n")
    out.append(table(["name", "header", "default", "needs a baseline"], rows))
    out.append("## CSV and JSON columns\n")
    out.append("`--format csv` prints one row per configuration with these columns, in this "
               "order; `--format json` prints the same rows under `configurations`. Accuracies "
               "and gaps are fractions (as in metrics.csv), not points.\n")
    out.append(table(["column", "meaning"],
                     [[f"`{c}`", cell(describe_column(c, sources))] for c in header]))
    out.append("## The JSON object\n")
    out.append(table(["key", "type", "meaning"],
                     [[f"`{k}`", type(v).__name__ if v is not None else "null",
                       cell(JSON_KEYS.get(k, ""))] for k, v in obj.items()]))
    return "\n".join(out)


# --------------------------------------------------------------------------- regularizers


def regularizers_page() -> str:
    """Every registered regularizer: its keys, what it does and its paper, from its module."""
    regs = importlib.import_module("regbench.training.regularizers")
    # the hooks the population engine runs for each member (the others keep runs out)
    per_member = importlib.import_module("regbench.training.regularizers.base").PER_MEMBER_HOOKS
    out = []
    found = _registered(regs)
    for cls in found:
        module = sys.modules[cls.__module__]
        name = getattr(cls, "name", cls.__name__)
        out.append(f"## {name}\n")
        mod_doc = inspect.cleandoc(module.__doc__ or "") if module is not regs else ""
        if mod_doc and not mod_doc.startswith("What a regularizer is"):
            out.append(mod_doc + "\n")
        if doc_of(cls):
            out.append(doc_of(cls) + "\n")
        facts = []
        keys = getattr(cls, "keys", None)
        if isinstance(keys, type) and dataclasses.is_dataclass(keys):
            facts.append("keys: " + ", ".join(f"`reg.{k.path}`" for k in _keys(keys)))
        hooks = [h for h in HOOKS if _overrides(cls, h)]
        if hooks:
            facts.append("hook points: " + ", ".join(f"`{h}`" for h in hooks))
        outside = [h for h in hooks if h not in per_member]
        if outside:
            facts.append("population engine: such runs train on their own (it overrides "
                         + ", ".join(f"`{h}`" for h in outside) + ")")
        elif "population_blocker" in vars(cls):
            facts.append("population engine: trained per member, except the settings it "
                         "refuses (those runs train on their own)")
        else:
            facts.append("population engine: trained per member")
        out += [f"- {f}" for f in facts]
        out.append("")
    return "\n".join(out)


HOOKS = ("layers", "attach", "batch", "data_loss", "loss_term", "param_groups", "after_step",
         "start_epoch", "end_epoch")


def _keys(cls: type, prefix: str = "") -> Iterator[Key]:
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(hint):
            yield from _keys(hint, f"{prefix}{f.name}.")
        else:
            yield Key(f"{prefix}{f.name}", hint, None, "", cls)


def _overrides(cls: type, hook: str) -> bool:
    """Whether a regularizer class uses a hook point (its own or an ancestor's code, not the
    base class's do-nothing one)."""
    base = next((b for b in cls.__mro__ if b.__name__ == "Regularizer"), None)
    return base is not None and getattr(cls, hook, None) is not getattr(base, hook, None)


def _registered(regs: types.ModuleType) -> list[type]:
    """The registered regularizer classes, in their order."""
    if hasattr(regs, "registered"):
        return list(regs.registered())
    return list(getattr(regs, "REGULARIZERS", ()))


# ---------------------------------------------------------------------------- the package


def modules_page() -> str:
    """Every subpackage and module of regbench with the first sentence of its docstring,
    folder by folder, in the order the layers build on each other."""
    import pkgutil

    rows_by_folder: dict[str, list[list[str]]] = {}
    for info in pkgutil.walk_packages(regbench.__path__, "regbench."):
        if ".conf" in info.name or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        doc = " ".join(inspect.cleandoc(module.__doc__ or "").split("\n\n")[0].split())
        folder = info.name.rsplit(".", 1)[0] if not info.ispkg else info.name
        path = info.name.replace(".", "/") + ("/" if info.ispkg else ".py")
        rows_by_folder.setdefault(folder, []).append([f"`{path}`", cell(doc)])
    out = []
    for folder, rows in rows_by_folder.items():
        out.append(f"### `{folder.replace('.', '/')}`\n")
        out.append(table(["module", "what it is"], rows))
    return "\n".join(out)


def registry_page() -> str:
    """The registries' tables (regularizers, then models), as scripts/registry_reference.py
    makes them, without its title and its 'Generated by' line."""
    spec = importlib.util.spec_from_file_location(
        "registry_reference", Path(__file__).parents[2] / "scripts" / "registry_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lines = module.page().splitlines()
    body = [ln for ln in lines if not ln.startswith("# ") and not ln.startswith("Generated by")]
    return "\n".join(body).strip() + "\n"


# ------------------------------------------------------------------ launchers and sweepers


def plugins_page() -> str:
    """regbench's own Hydra plugins (launchers, sweepers and their samplers and pruners):
    every config they register in Hydra's ConfigStore, with its keys, defaults and comments."""
    import pkgutil

    import hydra_plugins
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    for info in pkgutil.walk_packages(hydra_plugins.__path__, "hydra_plugins."):
        if info.name.startswith("hydra_plugins.regbench"):
            importlib.import_module(info.name)

    def nodes(tree: dict[str, Any], group: list[str]) -> Iterator[tuple[str, str, Any]]:
        for name, node in tree.items():
            if isinstance(node, dict):
                yield from nodes(node, [*group, name])
            elif getattr(node, "provider", None) == "regbench":
                yield "/".join(group), name.removesuffix(".yaml"), node

    out = []
    for group, name, node in sorted(nodes(ConfigStore.instance().repo, []),
                                    key=lambda g: (g[0].count("/"), g[0], g[1])):
        cls = OmegaConf.get_type(node.node)
        if cls is None or not dataclasses.is_dataclass(cls):
            continue
        out.append(f"## `{group}={name}`\n")
        if doc_of(cls):
            out.append(_escape(" ".join(doc_of(cls).split())) + "\n")
        rows = [[f"`{k.path}`", cell(type_name(k.hint)), code(k.default), cell(k.comment)]
                for k in _class_keys(cls, group.replace("/", ".") + ".")]
        if rows:
            out.append(table(["key", "type", "default", "meaning"], rows))
    return "\n".join(out)


def _class_keys(cls: type, prefix: str) -> Iterator[Key]:
    """The keys of a config dataclass, nested ones expanded, Hydra's own (_target_,
    defaults) left out, with their class defaults."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name.startswith("_") or f.name == "defaults":
            continue
        default = (f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else f.default)
        if dataclasses.is_dataclass(default):
            yield from _class_keys(type(default), f"{prefix}{f.name}.")
        elif default == "???":  # a config group of its own (a sampler, a pruner): listed below
            continue
        else:
            yield Key(f"{prefix}{f.name}", hints.get(f.name), default,
                      comment_of(cls, f.name), cls)


# ----------------------------------------------------------------------- the plugin API


def plugin_api_page() -> str:
    """What regbench.plugin exports, with signatures and docstrings, then the Regularizer's
    declarations and hook points as regbench.training.regularizers.base describes them."""
    plugin = importlib.import_module("regbench.plugin")
    rows = []
    for name in plugin.__all__:
        obj = getattr(plugin, name)
        if inspect.isfunction(obj):
            sig, kind = f"{name}{inspect.signature(obj)}", "function"
        else:
            sig, kind = name, "class" if inspect.isclass(obj) else "type"
        doc = inspect.getdoc(obj) if kind != "type" else f"the type `{obj}`"
        first = (doc or "").split("\n\n")[0]
        rows.append([code(sig).replace("|", "\\|"), kind, cell(first)])
    out = ["## What `regbench.plugin` exports\n", table(["name", "kind", "what it is"], rows)]
    base = importlib.import_module("regbench.training.regularizers.base")
    doc = inspect.cleandoc(base.__doc__ or "")
    bullets = re.findall(r"^- (``.+?)(?=^- |^\n|\Z)", doc, re.S | re.M)
    declared = [b for b in bullets if "(" not in b.split(":", 1)[0] or "check(" in b
                or "from_config(" in b or "sites()" in b]
    hooks = [b for b in bullets if b not in declared]
    for title, items in (("What a Regularizer declares", declared), ("Its hook points", hooks)):
        out.append(f"## {title}\n")
        out += [f"- {' '.join(b.split()).replace('``', '`')}" for b in items]
        out.append("")
    return "\n".join(out)
