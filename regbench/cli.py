"""The command line: a thin Typer layer over regbench's library.

Every command parses its arguments and calls the library; overrides go to Hydra unchanged
(``regbench.launch.jobs``), after one check (``regbench.launch.composition``) that turns a bad value
into one line and exit 2. What is shown on the terminal is ``regbench.present.terminal``.
"""

from __future__ import annotations

import os
import inspect
import shutil
import sys
import traceback
from pathlib import Path

import typer
from typer.core import TyperOption

from regbench import __version__
from regbench.errors import ConfigError, RegbenchError, RunDirError
from regbench.launch.composition import CONFIG_DIR_FLAGS, compose, rewrite_experiment, split_args
from regbench.present.terminal import err, say

PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}
PLUGIN_HELP = ("A module of your own regularizers, models or data sets to import (repeat for "
               "several; also $REGBENCH_PLUGINS=mod1,mod2 and installed `regbench.plugins` entry "
               "points).")
CONFIG_FLAGS = CONFIG_DIR_FLAGS | {"--config-name", "-cn"}  # what `regbench config` accepts
HELP_FLAGS = {"help_option_names": ["-h", "--help"]}  # inherited by every command

app = typer.Typer(
    name="regbench", add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
    pretty_exceptions_enable=False, context_settings=HELP_FLAGS,
    help="See, with evidence, what regularizers do to a CNN.\n\n"
         "Examples:\n  regbench run reg=dropout reg.dropout.fc=0.3\n  regbench run --help\n\n"
         "--debug, anywhere on the line, shows the traceback of an error.")
datasets_app = typer.Typer(invoke_without_command=True, no_args_is_help=False, rich_markup_mode="rich")
app.add_typer(datasets_app, name="datasets")


def _version(value: bool) -> None:
    if value:
        print(f"regbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks (or set REGBENCH_DEBUG=1); "
                               "accepted anywhere on the line."),
) -> None:
    """The options before the command; main() takes --debug from anywhere on the line."""


# ---------------------------------------------------------------------------- commands


@app.command(context_settings=PASSTHROUGH)
def run(ctx: typer.Context,
        overrides: list[str] = typer.Argument(None, help="Hydra overrides: key=value, group=option, +key=value.",
                                              show_default=False),
        plugin: list[str] = typer.Option(None, "--plugin", metavar="MODULE", help=PLUGIN_HELP,
                                         show_default=False)) -> None:
    """Train one CNN and print its overfitting gap.

    OVERRIDES are Hydra overrides, passed through unchanged, so Hydra's flags work too
    (`--cfg job`, `--info`, `--hydra-help`). Drop rates are drop probabilities, as in
    torch.nn.Dropout. `regbench config` lists every key and its value.

    Examples:
      regbench run
      regbench run reg=dropout reg.dropout.fc=0.3
      regbench run dataset.train_size=1000 reg.l2=5e-4 trainer.epochs=20
      regbench run experiment=smoke
      regbench run --config-path RUN_DIR --config-name config
      regbench run --plugin my_regularizers reg.my_key=0.5
    """
    from regbench.launch import run_command
    from regbench.training import plugins

    plugins.load(plugin or [])
    raise typer.Exit(run_command.run(list(overrides or []) + list(ctx.args)))


@app.command("config", context_settings=PASSTHROUGH)
def config_cmd(overrides: list[str] = typer.Argument(None, help="Hydra overrides.", show_default=False),
               plugin: list[str] = typer.Option(None, "--plugin", metavar="MODULE",
                                                help=PLUGIN_HELP, show_default=False)) -> None:
    """Print the resolved configuration that `regbench run` would use.

    It takes the same overrides as `regbench run` and checks them the same way, without
    loading any data; every key it prints can be set on the command line.

    Examples:
      regbench config
      regbench config reg=dropout reg.dropout.fc=0.3
      regbench config --config-path RUN_DIR --config-name config
      regbench config --plugin my_regularizers
    """
    from omegaconf import OmegaConf

    from regbench.training import plugins

    plugins.load(plugin or [])
    task_overrides, flags = split_args(list(overrides or []))
    other = [f for f in flags if f.startswith("-") and f not in CONFIG_FLAGS]
    if other:
        raise ConfigError(f"{other[0]} is not an option of `regbench config`: it takes overrides, "
                          "--config-path and --config-name (`regbench run` takes Hydra's flags)")
    _, schema = compose(rewrite_experiment(task_overrides), flags)
    print(OmegaConf.to_yaml(OmegaConf.structured(schema)), end="")


SWEEP_HELP = ("Hydra overrides; comma lists, range() and glob() are sweep axes "
              "(with hydra/sweeper=optuna: interval() ranges to search).")
FORMATS = ("table", "csv", "json", "markdown")


@app.command("sweep", context_settings=PASSTHROUGH)
def sweep_cmd(ctx: typer.Context,
              overrides: list[str] = typer.Argument(None, help=SWEEP_HELP, show_default=False),
              resume_dir: Path = typer.Option(None, "--resume", metavar="SWEEP_DIR",
                                              help="Run only the jobs of this sweep that are missing "
                                                   "or did not finish; finished ones are kept."),
              baseline: str = typer.Option(None, help="Configuration to compare against, e.g. "
                                                      "'reg.dropout.fc=0.0' (default: the study's own, else no "
                                                      "regularization)."),
              settle_on: bool = typer.Option(False, "--settle",
                                             help="Add seeds in rounds (5, 10, 20, 40 per "
                                                  "configuration) only where a comparison is "
                                                  "undecided, until each is established or "
                                                  "equivalent (settle.* keys tune it)."),
              max_seeds: int = typer.Option(None, "--max-seeds", metavar="N",
                                            help="Settle: seeds per configuration at most "
                                                 "(default 40)."),
              max_time: str = typer.Option(None, "--max-time", metavar="DURATION",
                                           help="Settle: no round starts after this much job "
                                                "time, e.g. 900, 15m, 2h (default: none)."),
              plugin: list[str] = typer.Option(None, "--plugin", metavar="MODULE", help=PLUGIN_HELP,
                                               show_default=False),
              ) -> None:
    """Train a grid of configurations (a Hydra multirun) and compare them.

    Every comma list, range() or glob() in OVERRIDES is an axis, config groups included;
    jobs go to results/<experiment>/sweeps/<sweep-id>/<job>/. A failed or diverged job
    does not stop the others; the exit code is 1 if any did not finish.
    With the Optuna sweeper the sweep is a search (example below):
    hydra.sweeper.pruner=median stops trailing trials, hydra.sweeper.confirm.top=3
    re-runs the best with fresh seeds at the end; --resume continues a grid or a search.
    hydra/launcher=joblib runs jobs in parallel, hydra/launcher=submitit_slurm on SLURM;
    on a GPU the grid trains as populations (hydra/launcher=population) unless a launcher
    is named. With --settle the seeds are not a fixed axis: each configuration starts with
    5, and rounds add seeds only where a comparison with the baseline is still undecided,
    until each is established or equivalent, or a budget is reached; the verdicts stay
    valid however many rounds run (repeated confidence intervals, Lan-DeMets spending).

    Examples:
      regbench sweep reg=dropout reg.dropout.fc=0.0,0.1,0.2,0.3,0.5 seed=0,1,2
      regbench sweep reg=none,dropout,l2,batchnorm,early_stopping seed=0,1,2
      regbench sweep experiment=dropout_grid hydra/launcher=joblib
      regbench sweep hydra/sweeper=optuna hydra.sweeper.sampler=random \\
          hydra.sweeper.n_trials=20 'reg.dropout.fc=interval(0,0.8)'
      regbench sweep experiment=dropout_search hydra.sweeper.pruner=median
      regbench sweep --resume results/dropout_grid/sweeps/SWEEP_ID
      regbench sweep --settle reg=dropout reg.dropout.fc=0.0,0.25,0.5
      regbench sweep experiment=dropout_settle --max-time 2h
      regbench sweep --plugin my_regularizers reg.my_key=0,0.5 seed=0,1,2
    """
    from regbench.launch import sweep_command
    from regbench.training import plugins

    plugins.load(plugin or [])
    args = list(overrides or []) + list(ctx.args)
    if resume_dir is not None:
        raise typer.Exit(sweep_command.resume(resume_dir, args, baseline))
    raise typer.Exit(sweep_command.start(args, baseline, settle_on, max_seeds, max_time))


@app.command("confirm", context_settings=PASSTHROUGH)
def confirm_cmd(ctx: typer.Context,
                sweep_dir: Path = typer.Argument(..., metavar="SWEEP_DIR",
                                                 help="A search's sweep folder (hydra/sweeper=optuna)."),
                top: int = typer.Option(None, help="How many of the best trials to re-run "
                                        "(default: the search's hydra.sweeper.confirm.top, else 3)."),
                seeds: int = typer.Option(None, help="Fresh seeds per candidate and for the baseline "
                                          "(default: hydra.sweeper.confirm.seeds, else 10)."),
                ) -> None:
    """Re-run a search's best trials with fresh seeds against the baseline, and say which is better.

    A search scores each trial on one seed, so its best trial is partly the luckiest. This
    re-runs the best trials' configurations and the baseline (the search's settings with
    reg=none and the searched keys at their defaults) with seeds no trial used, through the
    search's launcher, and compares them as summarize compares a grid (paired by seed,
    adjusted for the number of candidates). The table says which candidate is established
    as better than the baseline, which is within noise, and how far each one's search score
    overestimated its confirmed score. The runs go to SWEEP_DIR-confirm; run it again to
    finish an interrupted confirmation. Extra arguments are Hydra settings such as
    hydra/launcher=joblib.

    Examples:
      regbench confirm results/dropout_search/sweeps/SWEEP_ID
      regbench confirm SWEEP_DIR --top 2 --seeds 5 hydra/launcher=joblib
    """
    from regbench.launch import confirm

    raise typer.Exit(confirm.command(sweep_dir, top, seeds, list(ctx.args)))


def _runs(paths: list[Path] | None) -> list[Path]:
    from regbench.store import runs

    return runs.find_runs(paths or [Path("results")])


def _warn_damaged(lines: list[str]) -> None:
    """One warning naming the run folders skipped because their files are damaged."""
    if lines:
        from regbench.present.terminal import warn

        warn(f"{len(lines)} damaged run folder(s) skipped, listed with the failures: "
             + "; ".join(lines))


@app.command()
def summarize(paths: list[Path] = typer.Argument(None, help="Run, sweep or experiment folders "
                                                           "(default: results).", show_default=False),
              baseline: str = typer.Option(None, help="Configuration to compare against, e.g. "
                                                      "'reg=none' or 'reg.dropout.fc=0.0' "
                                                      "(default: the study's own, else the one "
                                                      "without regularization)."),
              fmt: str = typer.Option("table", "--format", help="table, csv, json or markdown."),
              no_adjust: bool = typer.Option(False, "--no-adjust",
                                             help="Per-comparison 95% intervals and verdicts, "
                                                  "not adjusted for the number of comparisons."),
              columns: str = typer.Option(None, "--columns", metavar="NAMES",
                                          help="Columns of the table and markdown: 'all' or a "
                                               "comma list (config, seeds, val_acc, d_val_acc, "
                                               "gap_last, d_gap_last, rise, best_epoch, gap_best, "
                                               "d_gap_best, test_acc, time, train_acc, gap_loss, "
                                               "gap_loss_last, val_acc_last, conv_epoch, "
                                               "d_conv_epoch, img_s, d_img_s, test_ece, "
                                               "mc_test_acc, mc_test_nll, mc_test_ece)."),
              margin: float = typer.Option(None, "--margin", metavar="POINTS",
                                           help="Equivalence margin in points of accuracy for "
                                                "every accuracy difference (default 0.5 for val "
                                                "acc and the gaps): a difference whose interval "
                                                "lies inside ±POINTS is 'equivalent'."),
              ) -> None:
    """Compare runs: one row per configuration, seeds pooled, differences against a baseline.

    Runs are grouped by their resolved configuration with the seed left out; seeds are the
    unit (a seed run twice counts once, the newest run). Each row shows mean ± sample std
    over seeds of val accuracy, the accuracy gap at the last epoch (the same budget for all)
    and at the best epoch, the rise of val loss after its minimum; differences against the
    baseline are paired by seed. With several configurations the verdicts are Holm-adjusted
    and each interval is at the level of the Holm step that decided it, so it excludes 0
    exactly when the difference is established. Three verdicts: established, equivalent (no
    difference larger than --margin points: two one-sided tests, TOST) or undecided (with
    the seeds that would likely decide it). A settle's folder (sweep --settle) is judged by
    its sequential design. csv and json carry every column.

    Examples:
      regbench summarize results/dropout_grid
      regbench summarize results/default/sweeps/SWEEP_ID --baseline reg.dropout.fc=0.0
      regbench summarize results --format csv > summary.csv
    """
    from regbench.study import settled
    from regbench.present import tables
    from regbench.present import terminal

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not allowed: use one of {', '.join(FORMATS)}")
    chosen = tables.choose_columns(columns)
    if margin is not None and not margin > 0:
        raise ConfigError(f"--margin {margin!r} is not allowed: a positive number of accuracy points")
    comp = settled.compare_paths(list(paths or []), _runs(paths), baseline, not no_adjust, margin)
    _warn_damaged(comp.damaged)
    if comp.table.empty:
        err.print(tables.failed_text(comp), end="", soft_wrap=True)
        raise RunDirError("no finished run to compare: every run listed above failed, diverged "
                          "or is unfinished")
    if fmt == "table":
        terminal.print_comparison(comp, columns=chosen, every=columns is not None)
        return
    for line in comp.duplicates:
        terminal.warn(line)
    print(tables.export(comp, fmt, chosen), end="")
    if fmt != "markdown" and not comp.failed.empty:
        err.print(tables.failed_text(comp), end="", soft_wrap=True)


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

    Examples:
      regbench plot results/dropout_grid/sweeps/SWEEP_ID
      regbench plot results/default --out figures
    """
    from regbench.study import compare
    from regbench.present import plots

    if out is not None and out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r}: a file is there; give a folder for the PNGs "
                          "(a new one is created)")
    comp = compare.compare(_runs(paths))
    _warn_damaged(comp.damaged)
    if comp.table.empty:
        raise RunDirError("no finished run among them: nothing to plot; "
                          "`regbench summarize` lists the runs and their status")
    for path in plots.make_plots(comp, out or (paths[0] if paths else Path("results"))):
        print(path)


@app.command()
def report(folder: Path = typer.Argument(..., metavar="SWEEP_DIR",
                                         help="A sweep folder, or any folder of runs (a study)."),
           fmt: str = typer.Option("html", "--format", help="html (a self-contained page) or "
                                                           "markdown (printed, for a README or an issue)."),
           out: Path = typer.Option(None, help="Where to write it (default: SWEEP_DIR/report.html; "
                                               "markdown goes to stdout unless --out is given)."),
           baseline: str = typer.Option(None, help="Configuration to compare against, e.g. "
                                                   "'reg.dropout.fc=0.0'."),
           ) -> None:
    """Write one shareable page for a sweep or a study.

    The HTML page is self-contained (figures embedded, no network
    needed) and reads on a laptop and a phone: the command, axes,
    seeds, data, machine and time; the comparison table with its
    intervals and verdicts; the figures; each run's status; failures.

    Examples:

      regbench report results/dropout_grid/sweeps/20261122-101500-a1b2c3

      regbench report SWEEP_DIR --format markdown > study.md
    """
    from regbench.present import report as report_mod

    if fmt not in report_mod.FORMATS:
        raise ConfigError(f"--format {fmt!r} is not allowed: use one of {', '.join(report_mod.FORMATS)}")
    study = report_mod.gather(folder, baseline)
    _warn_damaged([r.error or r.path for r in study.runs if r.status == "damaged"])
    text = report_mod.render(study, fmt)
    if fmt == "markdown" and out is None:
        print(text, end="")
        return
    print(report_mod.write(text, out or folder / report_mod.REPORT_FILE))


@app.command("atlas")
def atlas_cmd(words: list[str] = typer.Argument(None, metavar="CLAIM|KEY=VALUE",
                                                help="Claims to run (all when none is named), and "
                                                     "overrides (key=value) for every study.",
                                                show_default=False),
              out: Path = typer.Option(Path("results/atlas"), "--out", metavar="DIR",
                                       help="The atlas folder: each claim's settles, atlas.md, "
                                            "atlas.html."),
              max_time: str = typer.Option(None, "--max-time", metavar="DURATION",
                                           help="No settle round starts after this much job time "
                                                "over the whole atlas, e.g. 900, 15m, 2h."),
              max_seeds: int = typer.Option(None, "--max-seeds", metavar="N",
                                            help="Seeds per configuration at most in the studies "
                                                 "that start (default 40)."),
              render_only: bool = typer.Option(False, "--render-only",
                                               help="Run nothing: render the studies as they stand."),
              ) -> None:
    """Put the tutorials' claims about dropout to the test, one settled verdict each.

    Each claim is a preset (conf/experiment/claim_*.yaml) of one or more settles; its
    verdict (supported, contradicted, no effect within the margin, undecided at the
    budget) is read off their intervals by the claim's rule. A second run resumes what
    was interrupted or stopped by --max-time and only renders what is finished. The page
    is printed (80 columns) and written as DIR/atlas.md and DIR/atlas.html.

    Examples:
      regbench atlas --max-time 8h
      regbench atlas small_data rates
      regbench atlas small_data trainer.epochs=2 --max-seeds 5
      regbench atlas --render-only
    """
    from regbench.launch import atlas

    width = shutil.get_terminal_size((80, 24)).columns
    raise typer.Exit(atlas.command(list(words or []), out, max_time, max_seeds, render_only, width))


@app.command()
def resume(run_dir: Path = typer.Argument(..., help="A run directory under results/.")) -> None:
    """Continue an interrupted run from its last finished epoch.

    The folder is the one `regbench run` printed (it holds config.yaml and summary.json).

    Example:
      regbench resume results/default/RUN_ID
    """
    from regbench.launch import run_command

    raise typer.Exit(run_command.resume(run_dir))


@datasets_app.callback()
def datasets_list(ctx: typer.Context,
                  root: str = typer.Option(None, help="Data folder (default: $REGBENCH_DATA or ./data).")
                  ) -> None:
    """List the datasets, where their files are expected and whether they are present.

    mnist5k and synthetic are embedded and work offline; the others are read from the
    data folder in torchvision's layout.

    Examples:
      regbench datasets
      regbench datasets --root /shared/data
      regbench datasets download cifar10
    """
    if ctx.invoked_subcommand is not None:
        return
    from regbench.data.datasets import DATASET_INFO, dataset_dir, is_present
    from regbench.present.terminal import datasets_table, print_table

    root = root or os.environ.get("REGBENCH_DATA", "data")
    rows = [(name, None if info.where else is_present(name, root),
             info.where or ("(embedded)" if not info.files else str(dataset_dir(name, root))),
             info.source) for name, info in DATASET_INFO.items()]
    print_table(datasets_table(root, rows))


@datasets_app.command("download")
def datasets_download(name: str = typer.Argument(..., help="mnist, fashion_mnist or cifar10."),
                      root: str = typer.Option(None, help="Data folder (default: $REGBENCH_DATA or ./data).")
                      ) -> None:
    """Download a torchvision dataset into the data folder.

    The files land where `regbench run` looks for them (see `regbench datasets`); on a
    machine without internet, download elsewhere and copy the folder.

    Examples:
      regbench datasets download mnist
      regbench datasets download cifar10 --root /shared/data
    """
    from regbench.data.datasets import DATASET_INFO, download

    if name not in DATASET_INFO:
        raise ConfigError(f"dataset {name!r} is unknown; known: {', '.join(DATASET_INFO)}")
    path = download(name, root or os.environ.get("REGBENCH_DATA", "data"))
    print(f"{name}: files in {path}")


@app.command()
def bench(
    model: str = typer.Option(None, help="Network to measure: mnist (model=cnn), "
                              "cifar (model=cnn_cifar) or both (default: both on a GPU, "
                              "mnist on a CPU)."),
    images: int = typer.Option(None, help="Training images per epoch (default: the full training set "
                               "on a GPU, 1,000 on a CPU; the output says how many)."),
    epochs: int = typer.Option(1, help="Epochs per repetition."),
    reps: int = typer.Option(3, help="Repetitions of each loop, alternating; medians are reported."),
    dataset: str = typer.Option("synthetic", help="synthetic (random images of the real shape, offline) "
                                "or a real dataset: mnist, fashion_mnist, mnist5k, cifar10."),
    root: str = typer.Option(None, help="Data folder for a real dataset "
                             "(default: $REGBENCH_DATA or ./data)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
    threads: int = typer.Option(None, help="CPU threads for both loops "
                                "(default: PyTorch's, one per core)."),
    members: str = typer.Option(None, help="Population sizes to measure "
                                "(hydra/launcher=population), comma-separated "
                                "(default: 1,8,24,80 on a GPU, 1,4 on a CPU)."),
    full: bool = typer.Option(False, "--full", help="On a CPU, the whole measurement instead "
                              "of a quick look: both networks (6,000 and 1,500 images), "
                              "populations of 1, 8 and 24; 15 minutes and more on 2 cores."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as one JSON object."),
) -> None:
    """Measure regbench's training loop against the standard PyTorch tutorial loop.

    Both train the same model with the same batch size and optimizer, in this process,
    alternating; the table gives images/s, seconds per epoch (train pass, and full epoch
    with the eval-mode passes), their ratio, FLOP/s against the device's matmul peak, and
    peak memory. On a CPU the defaults are a quick look (about a minute on 2 cores); --full
    or the options ask for more.

    Examples:
      regbench bench
      regbench bench --full
      regbench bench --model mnist --images 6000 --members 1,8,24
      regbench bench --json
    """
    import json

    from regbench.launch.bench import check, population_sizes, run_bench
    from regbench.present.terminal import bench_table, print_table

    sizes = population_sizes(members) if members is not None else None
    check(model, dataset, images, epochs, reps, device, threads)  # bad options fail before any work
    result = run_bench(model, images=images, epochs=epochs, reps=reps, dataset=dataset,
                       root=root or os.environ.get("REGBENCH_DATA", "data"), device_name=device,
                       threads=threads, members=sizes, full=full)
    if as_json:
        print(json.dumps(result))
    else:
        print_table(bench_table(result))


def reflow(doc: str) -> str:
    """Help text with each prose paragraph on one line, so that it wraps once, at the
    terminal's width; a paragraph starting 'Example' keeps its lines (one command each)."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(p if p.startswith("Example") else " ".join(p.split()) for p in paragraphs)


def presets_help() -> str:
    """The presets `regbench run` accepts, one config group per line."""
    from regbench.launch.composition import presets, sweep_presets

    lines = [f"  {group}=NAME: {', '.join(presets(group))}" for group in ("reg", "dataset", "model", "optim")]
    studies = sweep_presets()
    runs_alone = [n for n in presets("experiment") if n not in studies and n != "default"]
    lines.append(f"  experiment=NAME: {', '.join(runs_alone)}")
    return ("Presets:\n" + "\n".join(lines)
            + f"\n\nSweep studies, for `regbench sweep experiment=NAME`: {', '.join(studies)}."
            + f"\n\nRegularizer keys, reg.KEY=VALUE: {', '.join(reg_keys())}.")


def reg_keys() -> list[str]:
    """The reg section's keys as the registered regularizers declare them ('dropout.*')."""
    from dataclasses import fields, is_dataclass

    from regbench.training.regularizers import RegConfig

    return [f"{f.name}.*" if is_dataclass(f.type) else f.name for f in fields(RegConfig)]


def _finish_help() -> None:
    """Reflow every command's help and list the presets and the reg keys under `run` (again
    after plugins are imported: their keys are listed too)."""
    for typer_app in (app, datasets_app):
        for info in typer_app.registered_commands:
            info.help = reflow(inspect.getdoc(info.callback) or "")
            if info.callback is run:
                info.help += "\n\n" + presets_help()
    cb = datasets_app.registered_callback
    if cb is not None and cb.callback is not None:
        cb.help = reflow(inspect.getdoc(cb.callback) or "")


# This Typer release prints a type placeholder after every option, `<bool>` even after a
# flag that takes no value; a flag shows none.
_display_type = TyperOption.display_type_rich
TyperOption.display_type_rich = (  # type: ignore[method-assign]
    lambda self, ctx: None if self.is_flag else _display_type(self, ctx))
_finish_help()


def _load_plugins(args: list[str]) -> None:
    """Import the plugins (--plugin anywhere on the line, $REGBENCH_PLUGINS, entry points)
    before any command runs, so that their keys are in `-h` and the schema."""
    from regbench.training import plugins

    named = [v for a, v in zip(args, args[1:]) if a == "--plugin"]
    named += [a.split("=", 1)[1] for a in args if a.startswith("--plugin=")]
    if named or plugins.from_env() or plugins.entry_points():
        plugins.load(named)
        _finish_help()


def main() -> None:
    """Console-script entry: one line and exit code 2 for user errors, 130 for Ctrl-C.

    `--debug` is taken out of the line wherever it stands (before or after the command, among
    Hydra overrides), so that it never reaches Hydra or a command as an unknown option.
    """
    from regbench.training import signals

    signals.take_ctrl_c()
    args = sys.argv[1:]
    if "--debug" in args:
        os.environ["REGBENCH_DEBUG"] = "1"
        args = [a for a in args if a != "--debug"]
    debug = os.environ.get("REGBENCH_DEBUG") == "1"
    try:
        _load_plugins(args)
        code = app(args=args, prog_name="regbench", standalone_mode=False)
    except RegbenchError as e:
        if debug:
            traceback.print_exc()
        say(err, f"regbench: error: {e}")  # one line; a terminal shows it broken between words
        code = e.exit_code
    except KeyboardInterrupt:
        err.print("regbench: interrupted")
        code = 130
    except Exception as e:  # usage errors are TyperException (Typer bundles its own click)
        from typer.exceptions import TyperException

        if isinstance(e, typer.Abort):  # Ctrl-C, as Click reports it
            err.print("regbench: interrupted")
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
