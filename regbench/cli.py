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
from regbench.errors import ConfigError, RegbenchError, RunDirError

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
        m = re.search(r"Could not find '([^']+)/([^/']+)'", text)
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
        key = m.group(1) if m else "a value"
        first = str(cause).splitlines()[0]
        value = re.search(r"Value '(.*?)'", first)
        kind = re.search(r"converted to (\w+)|not a valid (\w+)", first)
        if value and kind:
            expected = {"Integer": "an integer", "Float": "a number", "bool": "true or false"}
            wanted = kind.group(1) or kind.group(2)
            return f"{key}={value.group(1)!r} is not allowed: expected {expected.get(wanted, wanted)}"
        return f"{key}: {first}"
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


def call_hydra(args: list[str], report: bool = True) -> int:
    """Run the @hydra.main entry with this argument vector; return the exit code.

    With ``report`` the errors of the jobs run in this process are printed, one line each.
    """
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
    for outcome in hydra_app.LAST if report else []:
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


SWEEP_HELP = "Hydra overrides; comma lists, range() and glob() are sweep axes."
FORMATS = ("table", "csv", "json", "markdown")


@app.command("sweep", context_settings=PASSTHROUGH)
def sweep_cmd(ctx: typer.Context,
              overrides: list[str] = typer.Argument(None, help=SWEEP_HELP, show_default=False),
              resume_dir: Path = typer.Option(None, "--resume", metavar="SWEEP_DIR",
                                              help="Run only the jobs of this sweep that are missing "
                                                   "or did not finish; finished ones are kept."),
              baseline: str = typer.Option(None, help="Configuration to compare against, e.g. "
                                                      "'reg.dropout.fc=0.0' (default: no regularization)."),
              ) -> None:
    """Train a grid of configurations (a Hydra multirun) and compare them.

    Every comma list, range() or glob() in OVERRIDES is an axis, config groups included;
    jobs go to results/<experiment>/sweeps/<sweep-id>/<job>/. A failed or diverged job
    does not stop the others; the exit code is 1 if any did not finish.
    hydra/launcher=joblib runs jobs in parallel, hydra/launcher=submitit_slurm on SLURM.

    Examples:

      regbench sweep reg=dropout reg.dropout.fc=0.0,0.1,0.2,0.3,0.5 seed=0,1,2

      regbench sweep reg=none,dropout,l2,weight_decay,batchnorm,early_stopping,all seed=0,1,2

      regbench sweep experiment=dropout_grid hydra/launcher=joblib

      regbench sweep --resume results/dropout_grid/sweeps/20261122-101500-a1b2c3
    """
    from regbench import runs, sweep

    args = list(overrides or []) + list(ctx.args)
    if resume_dir is not None:
        plan, flags, hydra_args, todo = _resume_plan(resume_dir, args)
        print(f"sweep {resume_dir}: {len(plan.jobs) - len(todo)} of {len(plan.jobs)} jobs finished; "
              f"running {len(todo)}", flush=True)
        code = 0 if not todo else _launch(resume_dir, flags, hydra_args + ["hydra.output_subdir=null"])
        raise typer.Exit(_finish(resume_dir, plan, baseline) or code)
    task_overrides, flags = split_args(args)
    if any(f in NO_JOB_FLAGS for f in flags):  # Hydra takes these instead of --multirun
        raise typer.Exit(call_hydra([*flags, *rewrite_experiment(task_overrides)]))
    plan, first = _plan(task_overrides, flags)
    sweep_dir = runs.make_run_dir(first.output.root, f"{first.experiment}/sweeps")
    sweep.write_plan(sweep_dir, plan)
    print(f"sweep: {len(plan.jobs)} jobs over {', '.join(plan.axes) or 'no axis'} in {sweep_dir}",
          flush=True)
    code = _launch(sweep_dir, flags, _sweep_overrides(task_overrides))
    raise typer.Exit(_finish(sweep_dir, plan, baseline) or code)


def _sweep_overrides(args: list[str]) -> list[str]:
    """The overrides as typed, rewritten for Hydra, with progress bars off by default."""
    from regbench.sweep import key_of

    overrides = rewrite_experiment(args)
    if not any(key_of(o) == "trainer.progress" for o in overrides):
        overrides.append("trainer.progress=false")  # one line per job instead of bars
    return overrides


def _plan(args: list[str], flags: list[str]) -> tuple[Any, Any]:
    """Expand the sweep and check every job; ConfigError (exit 2) before anything runs."""
    from regbench import sweep

    overrides = _sweep_overrides(args)
    try:
        return sweep.plan(args, flags, overrides, check=lambda o: compose(o)[1])
    except RegbenchError:
        raise
    except Exception as e:
        raise ConfigError(explain(e, overrides)) from e


def _resume_plan(sweep_dir: Path, args: list[str]) -> tuple[Any, list[str], list[str], list[int]]:
    """(recorded plan, flags, overrides for Hydra, pending job numbers) of a sweep to resume."""
    from regbench import sweep

    plan = sweep.read_plan(sweep_dir)
    extra, flags = split_args(args)
    task = [o for o in extra if not sweep.key_of(o).startswith("hydra")]
    if task:
        raise ConfigError(f"{task[0]}: --resume runs the recorded jobs unchanged; only Hydra "
                          "settings such as hydra/launcher=joblib may be added")
    checked, _ = _plan(plan.args + extra, plan.flags + flags)
    if checked.jobs != plan.jobs:
        raise ConfigError(f"{sweep_dir}: its jobs expand differently now (were the presets "
                          "changed?); start a new sweep instead")
    return plan, plan.flags + flags, _sweep_overrides(plan.args + extra), sweep.pending(sweep_dir, plan)


def _launch(sweep_dir: Path, flags: list[str], overrides: list[str]) -> int:
    """Run the multirun into sweep_dir; Ctrl-C stops it with a hint on resuming."""
    try:
        return call_hydra(["--multirun", *flags, *overrides, f"hydra.sweep.dir='{sweep_dir}'"],
                          report=False)
    except KeyboardInterrupt:
        err.print(f"regbench: sweep interrupted; continue it with: regbench sweep --resume {sweep_dir}",
                  soft_wrap=True)
        raise typer.Exit(130) from None


def _finish(sweep_dir: Path, plan: Any, baseline: str | None) -> int:
    """Print the comparison and the unfinished jobs, write summary.csv and plots; exit code."""
    from regbench import compare, plots, runs, sweep

    out = Console(highlight=False)
    dirs = [sweep.job_dir(sweep_dir, n) for n in range(len(plan.jobs))]
    status = [sweep.job_status(d) for d in dirs]
    done = [d for d, st in zip(dirs, status, strict=True) if st in compare.DONE]
    if done:
        try:
            comp = compare.compare(done, baseline)
        except ConfigError as e:
            err.print(f"regbench: {e}; comparing without a baseline", soft_wrap=True)
            comp = compare.compare(done)
        out.print(compare.rich_table(comp))
        comp.table.to_csv(sweep_dir / "summary.csv", index=False)
        figures = plots.make_plots(comp, sweep_dir)
        out.print(f"table: {sweep_dir / 'summary.csv'}; figures: "
                  + ", ".join(p.name for p in figures), soft_wrap=True)
    failed = [n for n, st in enumerate(status) if st not in compare.DONE]
    if failed:
        out.print(f"{len(failed)} of {len(plan.jobs)} jobs did not finish (not in the table):")
        for n in failed:
            why = runs.why_unfinished(runs.read_summary(dirs[n]) if status[n] != "missing" else {})
            out.print(f"  {plan.label(n) or 'job ' + str(n)}: {status[n]}: {why} ({dirs[n]})",
                      soft_wrap=True)
        out.print(f"rerun them with: regbench sweep --resume {sweep_dir}", soft_wrap=True)
    return 1 if failed else 0


def _runs(paths: list[Path] | None) -> list[Path]:
    from regbench import compare

    return compare.find_runs(paths or [Path("results")])


@app.command()
def summarize(paths: list[Path] = typer.Argument(None, help="Run, sweep or experiment folders "
                                                           "(default: results).", show_default=False),
              baseline: str = typer.Option(None, help="Configuration to compare against, e.g. "
                                                      "'reg=none' or 'reg.dropout.fc=0.0' "
                                                      "(default: the one without regularization)."),
              fmt: str = typer.Option("table", "--format", help="table, csv, json or markdown."),
              ) -> None:
    """Compare runs: one row per configuration, seeds pooled, differences against a baseline.

    Runs are grouped by their resolved configuration with the seed left out. Each row shows
    mean ± sample std over seeds at the best epoch, and the difference in val accuracy and
    in the accuracy gap against the baseline, paired by seed, with a 95% t-interval
    ("within noise" when it contains 0). Failed or diverged runs are listed apart.

    Examples:

      regbench summarize results/dropout_grid

      regbench summarize results/default/sweeps/20261122-101500-a1b2c3 --baseline reg.dropout.fc=0.0

      regbench summarize results --format csv > summary.csv
    """
    import json

    from regbench import compare

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not allowed: use one of {', '.join(FORMATS)}")
    comp = compare.compare(_runs(paths), baseline)
    if comp.table.empty:
        err.print(compare.failed_text(comp), end="", soft_wrap=True)
        raise RunDirError("no finished run to compare: every run listed above failed, diverged "
                          "or is unfinished")
    if fmt == "table":
        out = Console(highlight=False)
        out.print(compare.rich_table(comp))
        out.print(compare.failed_text(comp), end="", soft_wrap=True)
    elif fmt == "markdown":
        print(compare.markdown(comp), end="")
    else:
        if fmt == "csv":
            print(comp.table.to_csv(index=False), end="")
        else:
            print(json.dumps({"baseline": comp.baseline, "note": comp.note,
                              "configurations": json.loads(comp.table.to_json(orient="records")),
                              "not_averaged": comp.failed.to_dict(orient="records")}, indent=2))
        if not comp.failed.empty:
            err.print(compare.failed_text(comp), end="", soft_wrap=True)


@app.command()
def plot(paths: list[Path] = typer.Argument(None, help="Run, sweep or experiment folders "
                                                      "(default: results).", show_default=False),
         out: Path = typer.Option(None, help="Folder for the PNGs (default: the first PATH)."),
         ) -> None:
    """Draw the curves and the gap against each swept parameter, as PNG files.

    curves.png: train and validation accuracy and loss per epoch, one colour per
    configuration (mean over seeds, band = ± 1 std); vs_<key>.png for every numeric key
    varied with the others fixed: validation accuracy and the accuracy gap against it
    (error bars = ± 1 std over seeds).

    Example: regbench plot results/dropout_grid/sweeps/20261122-101500-a1b2c3
    """
    from regbench import compare, plots

    comp = compare.compare(_runs(paths))
    if comp.table.empty:
        raise RunDirError("no finished run among them: nothing to plot; "
                          "`regbench summarize` lists the runs and their status")
    for path in plots.make_plots(comp, out or (paths[0] if paths else Path("results"))):
        print(path)


@app.command()
def resume(run_dir: Path = typer.Argument(..., help="A run directory under results/.")) -> None:
    """Continue an interrupted run from its last finished epoch.

    Example: regbench resume results/default/20261122-101500-a1b2c3
    """
    from omegaconf import OmegaConf

    from regbench import app as hydra_app
    from regbench import runs

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
    except Exception as e:  # usage errors are TyperException (Typer bundles its own click)
        from typer.exceptions import TyperException

        if isinstance(e, typer.Abort):
            code = 130
        elif isinstance(e, TyperException):
            show = getattr(e, "show", None)
            show() if show else err.print(f"regbench: error: {e.format_message()}")
            code = e.exit_code
        else:
            if debug:
                traceback.print_exc()
            err.print(f"regbench: internal error: {type(e).__name__}: {e} "
                      "(run with --debug or REGBENCH_DEBUG=1 for the traceback)", soft_wrap=True)
            code = 1
    sys.exit(code if isinstance(code, int) else 0)
