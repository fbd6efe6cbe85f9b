"""`regbench atlas`: every claim's settles, run resumably within one time budget, then judged.

A claim is an experiment preset ``claim_*`` (its ``claim`` section says what it predicts;
regbench.study.claims judges it). Each of its studies is one settle
(``regbench sweep --settle``) in a folder of its own, ``<atlas>/<claim>/<study>/``, so that
a second `regbench atlas` finds it again: a finished settle (settled, out of seeds) is only
read, one that was interrupted is resumed, one stopped by the time budget goes on while
budget is left, and one not started yet starts. ``--max-time`` is counted in seconds of
jobs over the whole atlas, the studies run earlier included; no settle round starts once it
is spent (a round under way finishes). Overrides given on the command line (a smaller
train_size, fewer epochs) go to every study; a study folder made with other overrides is
refused rather than mixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from regbench.config.schema import CONF_DIR, ClaimConfig, ClaimStudy
from regbench.errors import ConfigError
from regbench.launch import settle, sweep
from regbench.launch.composition import compose, experiment_presets
from regbench.store import settle_record, sweeps
from regbench.store.settle_record import OUT_OF_TIME, RUNNING
from regbench.study import claims, labels
from regbench.text import one_line

PREFIX = "claim_"
KEEP_OUT = ("settle.max_time_s", "settle.max_seeds")  # budgets may change between runs


@dataclass
class StudyPlan:
    """One settle of one claim: where it lives and the overrides it runs with."""

    claim: str
    name: str
    study: ClaimStudy
    home: Path  # <atlas>/<claim>/<study>: the settle's output.root
    args: list[str]

    def folder(self) -> Path | None:
        """The settle's sweep folder, once it has started (the newest, should there be two)."""
        found = sorted(self.home.glob("*/sweeps/*/" + settle_record.SETTLE_FILE))
        return found[-1].parent if found else None


def claim_names() -> list[str]:
    """Every claim preset, in the atlas's order (claim.number)."""
    names = [n for n in experiment_presets() if n.startswith(PREFIX)]
    return sorted(names, key=lambda n: (claim_of(n).number, n))


def claim_of(name: str) -> ClaimConfig:
    """The claim section of preset `name` (read from its file, not composed), checked."""
    from omegaconf import OmegaConf, ValidationError

    path = CONF_DIR / "experiment" / f"{name}.yaml"
    try:
        node = OmegaConf.merge(OmegaConf.structured(ClaimConfig), OmegaConf.load(path).get("claim", {}))
        claim = OmegaConf.to_object(node)
    except ValidationError as e:
        raise ConfigError(f"{path}: claim section not allowed ({one_line(e)})") from e
    assert isinstance(claim, ClaimConfig)
    claims.check_claim(name, claim)
    return claim


def resolve(words: list[str]) -> list[str]:
    """Claim presets from names as typed ('rates' or 'claim_rates'); all when none is."""
    known = claim_names()
    if not words:
        return known
    out = []
    for word in words:
        name = word if word.startswith(PREFIX) else PREFIX + word
        if name not in known:
            short = ", ".join(n.removeprefix(PREFIX) for n in known)
            raise ConfigError(f"claim {word!r} is not allowed: known claims are {short}")
        out.append(name)
    return list(dict.fromkeys(out))


def split_words(words: list[str]) -> tuple[list[str], list[str]]:
    """(claim names, overrides): a word with '=' is an override for every study."""
    return [w for w in words if "=" not in w], [w for w in words if "=" in w]


def plans(names: list[str], overrides: list[str], root: Path) -> list[StudyPlan]:
    """Every study of the named claims, with its overrides (nothing checked yet)."""
    out = []
    for name in names:
        for study_name, study in claims.studies(claim_of(name)).items():
            home = root / name.removeprefix(PREFIX) / study_name
            args = [f"experiment={name}", *study.overrides, *overrides, "settle.enabled=true",
                    f"output.root={home}"]
            out.append(StudyPlan(name, study_name, study, home, args))
    return out


def without_budgets(args: list[str]) -> list[str]:
    return [a for a in args if sweep.key_of(a) not in KEEP_OUT]


def shown(args: list[str]) -> str:
    """A study's overrides as the user would type them (its output folder aside)."""
    return " ".join(a for a in args if not a.startswith("output.root="))


def check_plan(p: StudyPlan) -> None:
    """ConfigError (exit 2) before any job runs: a bad override, a part that names no
    configuration of its study, or a folder started with other overrides."""
    folder = p.folder()
    if folder is not None:
        started, asked = without_budgets(sweeps.read_plan(folder).args), without_budgets(p.args)
        if started != asked:
            raise ConfigError(f"{folder}: this study was started with {shown(started)!r}, not "
                              f"{shown(asked)!r}; use another --out, or the same overrides")
        return
    plan, _ = sweep.check(p.args, [])
    configs = list({tuple(settle.without_seed(job)): None for job in plan.jobs})
    hydra = settle.hydra_only(sweep.job_overrides(p.args))
    flats = [settle.grouping_keys(compose([*c, *hydra])[1]) for c in configs]
    names = labels.name_configs(flats, [list(c) for c in configs]).labels
    table = dict(zip(names, flats, strict=True))
    for part in claim_of(p.claim).parts:
        if part.study == p.name:
            claims.find_config(part.config, table, f"{p.claim}: claim.parts config")


def spent(all_plans: list[StudyPlan]) -> float:
    """Seconds of jobs that the atlas's settles have taken so far."""
    total = 0.0
    for p in all_plans:
        folder = p.folder()
        if folder is not None:
            total += settle_record.read(folder).wall_time_s
    return total


def run(names: list[str], overrides: list[str], root: Path, max_time_s: float | None,
        max_seeds: int | None) -> int:
    """Run (or go on with) every study of the named claims; the worst exit code."""
    all_plans = plans(names, overrides, root)
    for p in all_plans:
        check_plan(p)
    code = 0
    for p in all_plans:
        left = None if max_time_s is None else max_time_s - spent(all_plans)
        study_code = run_study(p, left, max_seeds)
        if study_code in sweep.STOPPED:
            return study_code
        code = max(code, study_code)
    return code


def run_study(p: StudyPlan, left: float | None, max_seeds: int | None) -> int:
    """Start, resume or leave one settle; its exit code (0 when nothing was left to do)."""
    folder = p.folder()
    if left is not None and left <= 0:
        return 0  # out of budget: shown as it stands
    if folder is None:
        args = [*p.args, *settle.cli_overrides(False, max_seeds, None)]
        if left is not None:
            args.append(f"settle.max_time_s={max(left, 1.0):.0f}")
        plan, first = sweep.check(args, [])
        print(f"atlas: {p.claim.removeprefix(PREFIX)}/{p.name}", flush=True)
        return settle.start(plan, first, args, [], p.study.baseline)
    record = settle_record.read(folder)
    if record.status not in (RUNNING, OUT_OF_TIME):
        return 0  # settled, or out of seeds: only read
    record.status = RUNNING
    record.max_time_s = None if left is None else record.wall_time_s + left
    settle_record.write(folder, record)
    print(f"atlas: {p.claim.removeprefix(PREFIX)}/{p.name} goes on", flush=True)
    return settle.resume(folder, [], p.study.baseline)


def results(names: list[str], overrides: list[str], root: Path) -> list[claims.ClaimResult]:
    """Every named claim judged from its study folders as they stand."""
    out = []
    by_claim: dict[str, dict[str, claims.StudyResult]] = {}
    for p in plans(names, overrides, root):
        by_claim.setdefault(p.claim, {})[p.name] = claims.read_study(p.name, p.folder(),
                                                                     p.study.baseline)
    for name in names:
        out.append(claims.judge(name, claim_of(name), by_claim[name]))
    return out


def command(words: list[str], out: Path, max_time: str | None, max_seeds: int | None,
            render_only: bool, width: int) -> int:
    """`regbench atlas`: run (or go on with) the named claims, print the page at `width`
    columns and write atlas.md and atlas.html into `out`; the exit code."""
    from regbench.present import atlas_view

    names, overrides = split_words(words)
    names = resolve(names)
    budget = settle.seconds(max_time) if max_time is not None else None
    code = 0 if render_only else run(names, overrides, out, budget, max_seeds)
    if code in sweep.STOPPED:
        return code
    judged = results(names, overrides, out)
    options = [("--max-time", max_time), ("--max-seeds", max_seeds), ("--out", out)]
    line = " ".join(["regbench atlas", *words,
                     *(f"{flag} {value}" for flag, value in options if value is not None)])
    print(atlas_view.terminal_page(judged, out, width, overrides), end="")
    for path in atlas_view.write_pages(judged, out, line, overrides):
        print(path)
    unfinished = any(s.unfinished for r in judged for s in r.studies)
    return max(code, int(unfinished))  # 1, as a sweep, when a run did not finish
