"""The command line: a thin Typer layer over regbench's library.

Overrides are passed to Hydra unchanged. Before Hydra runs, they are composed once with
Hydra's compose API and checked, so that a mistyped key or a bad value ends in one line
and exit code 2 before any folder is made or any data is read.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from regbench import __version__
from regbench.errors import ConfigError, RegbenchError

PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}
# Hydra flags that take the next word as their value.
FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name",
                    "-cn", "--config-dir", "-cd", "--experimental-rerun"}
# Hydra flags after which Hydra prints something and runs no job.
NO_JOB_FLAGS = {"--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--shell-completion",
                "-sc", "--experimental-rerun"}
INFO_TOPICS = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}

app = typer.Typer(
    name="regbench", add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    help="See, with evidence, what regularizers do to a CNN.\n\n"
         "Example: [bold]regbench run reg=dropout reg.dropout.fc=0.3[/bold]")
datasets_app = typer.Typer(help="List datasets and where their files are expected; download one.",
                           invoke_without_command=True, no_args_is_help=False)
app.add_typer(datasets_app, name="datasets")
err = Console(stderr=True, highlight=False)


def _version(value: bool) -> None:
    if value:
        print(f"regbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks (or set REGBENCH_DEBUG=1)."),
) -> None:
    if debug:
        os.environ["REGBENCH_DEBUG"] = "1"


# ------------------------------------------------------------------ overrides and checking


def split_args(args: list[str]) -> tuple[list[str], list[str]]:
    """(overrides, Hydra flags with their values) from a raw argument list."""
    overrides: list[str] = []
    flags: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        nxt = args[i + 1] if i + 1 < len(args) else None
        if a.startswith("-"):
            flags.append(a)
            optional = a in ("--info", "-i")  # its topic is optional
            if nxt is not None and (a in FLAGS_WITH_VALUE or optional and nxt in INFO_TOPICS):
                flags.append(nxt)
                i += 1
        else:
            overrides.append(a)
        i += 1
    return overrides, flags


def experiment_presets() -> list[str]:
    from regbench.config import CONF_DIR

    return sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def rewrite_experiment(overrides: list[str]) -> list[str]:
    """`experiment=NAME` without a preset files runs under results/NAME/ with no preset."""
    out = []
    for o in overrides:
        m = re.fullmatch(r"experiment=([^,]*)", o)
        if m and m.group(1) not in experiment_presets():
            os.environ["REGBENCH_EXPERIMENT"] = m.group(1)
            o = "experiment=default"
        out.append(o)
    return out


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) if str(e) else type(e).__name__


def explain(e: Exception, overrides: list[str]) -> str:
    """Turn a Hydra / OmegaConf composition error into one line that says what is allowed."""
    from hydra.errors import MissingConfigException, OverrideParseException

    from regbench.config import suggest_key

    cause = e.__cause__ or e
    text = str(e)
    if isinstance(e, MissingConfigException) or "Could not find" in text:
        m = re.search(r"Could not find '([^/']+)/([^']+)'", text)
        if m:
            group, option = m.groups()
            opts = re.findall(r"^\t(\S+)$", text.split("Config search path")[0], re.M)
            return f"{group}={option}: no such preset; available: {', '.join(opts)}"
    if "Could not override" in text or "Key '" in str(cause) and "not in" in str(cause):
        m = re.search(r"full_key: (\S+)", str(cause)) or re.search(r"override '([^']+)'", text)
        key = m.group(1) if m else "?"
        return (f"unknown key {key!r}{suggest_key(key)}; `regbench config` lists every key "
                "(to add a new one use +key=value)")
    if "Ambiguous value" in text or "--multirun" in text:
        m = re.search(r"argument '([^']+)'", text)
        return (f"{m.group(1) if m else 'a comma list'}: a sweep needs `regbench sweep`; "
                "`regbench run` takes one value per key")
    if type(cause).__name__ == "ValidationError":
        m = re.search(r"full_key: (\S+)", str(cause))
        first = str(cause).splitlines()[0]
        return f"{m.group(1) if m else 'a value'}: {first}"
    if isinstance(e, OverrideParseException):
        bad = next((o for o in overrides if "=" not in o), None)
        if bad is not None:
            return f"{bad!r} is not an override; write key=value, e.g. reg.dropout.fc=0.3"
        return f"cannot parse the overrides: {_one_line(e)}"
    return _one_line(e)


def compose(overrides: list[str]) -> Any:
    """Compose and check the configuration (Hydra's own node included); ConfigError if bad."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from regbench import app as hydra_app  # registers the resolvers
    from regbench.config import CONF_DIR, to_schema, validate

    del hydra_app
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose("config", overrides=overrides, return_hydra_config=True)
    except Exception as e:
        raise ConfigError(explain(e, overrides)) from e
    task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    try:
        schema = to_schema(task)
    except Exception as e:
        raise ConfigError(explain(e, overrides)) from e
    validate(schema)
    return cfg, schema


def call_hydra(args: list[str]) -> int:
    """Run the @hydra.main entry with this argument vector; return the exit code."""
    from regbench import app as hydra_app

    hydra_app.LAST.clear()
    saved = sys.argv
    sys.argv = ["regbench", *args]
    try:
        hydra_app.hydra_main()
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else 1
    finally:
        sys.argv = saved
    for outcome in hydra_app.LAST:
        if outcome.message and outcome.exit_code == 2:
            err.print(f"regbench: error: {outcome.message}", soft_wrap=True)
        elif outcome.message:
            err.print(f"regbench: run {outcome.status}: {outcome.message} ({outcome.run_dir})",
                      soft_wrap=True)
    return max((o.exit_code for o in hydra_app.LAST), default=0)


# ---------------------------------------------------------------------------- commands


@app.command(context_settings=PASSTHROUGH)
def run(ctx: typer.Context,
        overrides: list[str] = typer.Argument(None, help="Hydra overrides: key=value, group=option, +key=value.",
                                              show_default=False)) -> None:
    """Train one CNN and print its overfitting gap.

    OVERRIDES are Hydra overrides, passed through unchanged, so Hydra's flags work too
    (`--cfg job`, `--info`). Drop rates are drop probabilities, as in torch.nn.Dropout.

    Examples:

      regbench run                                   # mnist5k, no regularization, 10 epochs

      regbench run reg=dropout reg.dropout.fc=0.3    # a preset, then one key changed

      regbench run dataset.train_size=1000 reg.l2=5e-4 trainer.epochs=20
    """
    args = list(overrides or []) + list(ctx.args)
    task_overrides, flags = split_args(args)
    task_overrides = rewrite_experiment(task_overrides)
    if any(f in NO_JOB_FLAGS for f in flags):
        raise typer.Exit(call_hydra(flags + task_overrides))
    from regbench import runs

    _, schema = compose(task_overrides)
    run_dir = runs.make_run_dir(schema.output.root, schema.experiment)
    code = call_hydra(flags + task_overrides + [f"hydra.run.dir='{run_dir}'"])
    if code != 0 and not (run_dir / runs.METRICS_FILE).exists():
        shutil.rmtree(run_dir, ignore_errors=True)  # no epoch was computed: leave no husk
    raise typer.Exit(code)


@app.command("config", context_settings=PASSTHROUGH)
def config_cmd(overrides: list[str] = typer.Argument(None, help="Hydra overrides.", show_default=False)
               ) -> None:
    """Print the resolved configuration that `regbench run` would use.

    Example: regbench config reg=dropout reg.dropout.fc=0.3
    """
    from omegaconf import OmegaConf

    _, schema = compose(rewrite_experiment(list(overrides or [])))
    print(OmegaConf.to_yaml(OmegaConf.structured(schema)), end="")


@app.command()
def resume(run_dir: Path = typer.Argument(..., help="A run directory under results/.")) -> None:
    """Continue an interrupted run from its last finished epoch.

    Example: regbench resume results/default/20261122-101500-a1b2c3
    """
    from omegaconf import OmegaConf

    from regbench import app as hydra_app
    from regbench import runs
    from regbench.errors import RunDirError

    if not (run_dir / runs.CONFIG_FILE).is_file():
        raise RunDirError(f"{run_dir}: no {runs.CONFIG_FILE}; not a regbench run directory")
    summary = runs.read_summary(run_dir) if (run_dir / runs.SUMMARY_FILE).exists() else {}
    if summary.get("status") in ("completed", "early_stopped"):
        err.print(f"regbench: {run_dir} already finished ({summary['status']}); nothing to resume")
        raise typer.Exit(0)
    try:
        cfg = OmegaConf.load(run_dir / runs.CONFIG_FILE)
    except Exception as e:
        raise RunDirError(f"{run_dir / runs.CONFIG_FILE}: unreadable ({_one_line(e)})") from e
    outcome = hydra_app.execute(cfg, run_dir, resume=True)
    if outcome.message:
        err.print(f"regbench: error: {outcome.message}", soft_wrap=True)
    raise typer.Exit(outcome.exit_code)


@datasets_app.callback()
def datasets_list(ctx: typer.Context,
                  root: str = typer.Option(None, help="Data folder (default: $REGBENCH_DATA or ./data).")
                  ) -> None:
    """List the datasets, where their files are expected and whether they are present.

    Example: regbench datasets
    """
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from regbench.data import DATASET_INFO, dataset_dir, is_present

    root = root or os.environ.get("REGBENCH_DATA", "data")
    table = Table(title=f"datasets (root: {Path(root).resolve()})", title_justify="left")
    for col in ("name", "present", "files expected in", "source"):
        table.add_column(col)
    for name, info in DATASET_INFO.items():
        where = "(embedded)" if not info.files else str(dataset_dir(name, root))
        table.add_row(name, "yes" if is_present(name, root) else "no", where, info.source)
    Console().print(table)


@datasets_app.command("download")
def datasets_download(name: str = typer.Argument(..., help="mnist, fashion_mnist or cifar10."),
                      root: str = typer.Option(None, help="Data folder (default: $REGBENCH_DATA or ./data).")
                      ) -> None:
    """Download a torchvision dataset into the data folder.

    Example: regbench datasets download cifar10
    """
    from regbench.data import DATASET_INFO, download

    if name not in DATASET_INFO:
        raise ConfigError(f"dataset {name!r} is unknown; known: {', '.join(DATASET_INFO)}")
    path = download(name, root or os.environ.get("REGBENCH_DATA", "data"))
    print(f"{name}: files in {path}")


@app.command()
def bench(
    model: str = typer.Option("both", help="Network to measure: mnist (model=cnn), "
                              "cifar (model=cnn_cifar) or both."),
    images: int = typer.Option(None, help="Training images per epoch (default: the full training set "
                               "on a GPU, fewer on the CPU; the output says how many)."),
    epochs: int = typer.Option(1, help="Epochs per repetition."),
    reps: int = typer.Option(3, help="Repetitions of each loop, alternating; medians are reported."),
    dataset: str = typer.Option("synthetic", help="synthetic (random images of the real shape, offline) "
                                "or a real dataset: mnist, fashion_mnist, mnist5k, cifar10."),
    root: str = typer.Option(None, help="Data folder for a real dataset "
                             "(default: $REGBENCH_DATA or ./data)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
    threads: int = typer.Option(None, help="CPU threads for both loops "
                                "(default: PyTorch's, one per core)."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as one JSON object."),
) -> None:
    """Measure regbench's training loop against the standard PyTorch tutorial loop.

    Both train the same model with the same batch size and optimizer, in this process,
    alternating; the table gives images/s, seconds per epoch (train pass, and full epoch
    with the eval-mode passes), their ratio, FLOP/s against the device's matmul peak, and
    peak memory.

    Example: regbench bench --model mnist --images 6000 --reps 3
    """
    import json

    from regbench.bench import check, run_bench, table

    check(model, dataset, images, epochs, reps, device, threads)  # bad options fail before any work
    result = run_bench(model, images=images, epochs=epochs, reps=reps, dataset=dataset,
                       root=root or os.environ.get("REGBENCH_DATA", "data"), device_name=device,
                       threads=threads)
    if as_json:
        print(json.dumps(result))
    else:
        Console().print(table(result))


def main() -> None:
    """Console-script entry: one line and exit code 2 for user errors, 130 for Ctrl-C."""
    debug = os.environ.get("REGBENCH_DEBUG") == "1" or "--debug" in sys.argv[1:2]
    try:
        code = app(standalone_mode=False)
    except RegbenchError as e:
        if debug:
            traceback.print_exc()
        err.print(f"regbench: error: {e}", soft_wrap=True)
        code = e.exit_code
    except KeyboardInterrupt:
        err.print("regbench: interrupted")
        code = 130
    except Exception as e:  # click usage errors are ClickException
        import click

        if isinstance(e, click.exceptions.Abort):
            code = 130
        elif isinstance(e, click.ClickException):
            e.show()
            code = e.exit_code
        else:
            if debug:
                traceback.print_exc()
            err.print(f"regbench: internal error: {type(e).__name__}: {e} "
                      "(run with --debug or REGBENCH_DEBUG=1 for the traceback)", soft_wrap=True)
            code = 1
    sys.exit(code if isinstance(code, int) else 0)
