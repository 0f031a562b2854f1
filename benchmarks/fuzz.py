"""A bounded fuzz run over the image and video decoders, the webdataset tar reader and the job-file parser.

    python benchmarks/fuzz.py [--targets image video tar job] [--examples 200] [--seconds 120] [--seed 0]
                              [--out /tmp/fuzz] [--timeout 20] [--memory-mb 4096] [--shrink-seconds 30]
    python benchmarks/fuzz.py --replay /tmp/fuzz/image/00-....pkl

Hypothesis draws cases for each target (benchmarks/fuzz_cases.py: seeds and mutations) and checks each against
the target's contract (benchmarks/fuzz_targets.py) until `--examples` per target or `--seconds` in all (split
evenly between the targets) are spent. Every example runs
in one isolated worker process (lvm_data.media.isolate) under a timeout and an address-space limit, so a hang,
a native crash or a memory blow-up is a finding, not the end of the run. A finding is shrunk by Hypothesis (for
at most --shrink-seconds) and the run goes on with a new seed, looking for others; each distinct one (exception
type and innermost frame) is saved under OUT/TARGET/ as the input file, a .pkl for --replay and a .txt with its
traceback. Offline, deterministic for a seed. Prints per target: examples, seconds, examples/s, outcomes by
reason, findings. Exit status 1 when anything was found.
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fuzz_cases
import fuzz_targets
from fuzz_targets import Limits, Verdict
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky

from lvm_data.media.isolate import IsolatedWorker, WorkerStartError
from lvm_data.outcomes import ItemError, Reason

TARGETS = ("image", "video", "tar", "job")
ROUND = 100  # examples per Hypothesis run, each with its own seed: the budget is checked between runs
MAX_CALLS = 20_000  # examples before the worker is replaced (the pipeline's 1000 would cost a start per second)


@dataclass
class Finding:
    kind: str
    signature: str
    detail: str
    case: Any
    payload: Any


@dataclass
class Report:
    target: str
    examples: int = 0
    shrink_calls: int = 0
    seconds: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    findings: dict[str, Finding] = field(default_factory=dict)


class Found(Exception):
    """Raised to Hypothesis for the finding it is shrinking."""


@dataclass(frozen=True)
class Budget:
    examples: int = 200
    seconds: float = 30.0
    shrink_seconds: float = 30.0
    timeout_s: float = 20.0
    memory_mb: int = 4096
    seed: int = 0
    log: str = ""  # the worker's stderr (decoders' messages); "" leaves it on this process's stderr


class Fuzzer:
    """One target's run: rounds of Hypothesis of ROUND examples; a round ends early at a new finding, shrunk."""

    def __init__(self, target: str, worker: IsolatedWorker, budget: Budget):
        self.target, self.worker, self.budget = target, worker, budget
        self.report = Report(target)
        self.hunting: str | None = None  # the signature Hypothesis is shrinking
        self.best: Any = None  # its smallest case so far (Hypothesis replays it last)
        self.deadline = self.shrink_deadline = 0.0

    def run(self) -> Report:
        start = time.monotonic()
        self.deadline = start + self.budget.seconds
        seed = self.budget.seed
        while not self._spent():
            self.hunting = None
            self._round(seed, min(ROUND, self.budget.examples - self.report.examples))
            seed += 1
        self.report.seconds = time.monotonic() - start
        return self.report

    def _spent(self) -> bool:
        return time.monotonic() > self.deadline or self.report.examples >= self.budget.examples

    def _round(self, seed: int, examples: int) -> None:
        @hypothesis_seed(seed)
        # hypothesis's HealthCheckMeta.__iter__ is unannotated, so the checker types the members as the metaclass
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=(Phase.generate, Phase.shrink),
            suppress_health_check=list(HealthCheck),  # pyright: ignore[reportArgumentType]
            report_multiple_bugs=False,
            verbosity=Verbosity.quiet,
        )
        @given(fuzz_cases.strategy(self.target))
        def body(case):
            self.example(case)

        try:
            body()
        except (Found, Flaky):
            pass

    def example(self, case: Any) -> None:
        shrinking = self.hunting is not None
        if not shrinking and self._spent():
            return  # Hypothesis's remaining examples are skipped
        if shrinking and time.monotonic() > self.shrink_deadline and case != self.best:
            return  # out of shrinking time: only the best case still fails, so Hypothesis ends with it
        payload = fuzz_cases.payload(self.target, case)
        verdict = self.check(payload)
        if shrinking:
            self.report.shrink_calls += 1
        else:
            self.report.examples += 1
            self.report.outcomes[verdict.outcome] += 1
        if not verdict.kind:
            return
        known = self.report.findings.get(verdict.signature)
        if known is None or verdict.signature == self.hunting or _size(payload) < _size(known.payload):
            self.report.findings[verdict.signature] = Finding(
                verdict.kind, verdict.signature, verdict.detail, case, payload
            )
        if not shrinking and known is None:
            self.hunting, self.shrink_deadline = verdict.signature, time.monotonic() + self.budget.shrink_seconds
        if verdict.signature == self.hunting:
            self.best = case
            raise Found(verdict.signature)

    def check(self, payload: Any) -> Verdict:
        """The target's check in the worker; a worker that hangs or dies is itself the finding."""
        try:
            limits = Limits(self.budget.memory_mb, self.budget.timeout_s, self.budget.log)
            return self.worker.call(
                fuzz_targets.run_check, self.target, payload, limits, timeout_s=self.budget.timeout_s, name=self.target
            )
        except WorkerStartError:
            raise
        except ItemError as err:
            kind = "hang" if err.reason is Reason.TIMEOUT else "crash"
            if kind == "crash":
                self._probe(err)
            return Verdict(err.reason.value, kind, f"{kind} of the {self.target} check", err.detail)

    def _probe(self, crash: ItemError) -> None:
        """A fresh worker that cannot even run `probe` (lvm_data does not import: a tree being edited) is the
        harness's failure, not the input's."""
        try:
            self.worker.call(fuzz_targets.probe, timeout_s=60.0, name="probe")
        except ItemError as err:
            raise RuntimeError(
                f"the fuzz worker cannot run ({crash.detail}; then {err.detail}); "
                "check that `python -c 'import fuzz_targets'` works in benchmarks/"
            ) from err


def _size(payload: Any) -> int:
    return len(payload[0] if isinstance(payload, tuple) else payload)


def run_fuzz(targets: list[str], budget: Budget, out: Path | None = None) -> list[Report]:
    """Fuzz each target in turn with an equal share of `budget.seconds`; findings saved under `out`."""
    share = dataclasses.replace(budget, seconds=budget.seconds / len(targets))
    reports = []
    with IsolatedWorker(max_calls=MAX_CALLS) as worker:
        for target in targets:
            report = Fuzzer(target, worker, share).run()
            if out is not None:
                save(report, out)
            reports.append(report)
    return reports


def save(report: Report, out: Path) -> None:
    folder = out / report.target
    folder.mkdir(parents=True, exist_ok=True)
    for i, finding in enumerate(sorted(report.findings.values(), key=lambda f: f.signature)):
        stem = folder / f"{i:02d}-{re.sub(r'[^A-Za-z0-9]+', '-', finding.signature).strip('-')[:60]}"
        data = finding.payload[0] if isinstance(finding.payload, tuple) else finding.payload
        raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
        Path(f"{stem}{_extension(report.target, finding)}").write_bytes(raw)
        Path(f"{stem}.pkl").write_bytes(pickle.dumps({"target": report.target, "payload": finding.payload}))
        Path(f"{stem}.txt").write_text(
            f"{finding.kind}: {finding.signature}\ncase: {finding.case!r:.2000}\n"
            f"replay: python benchmarks/fuzz.py --replay {stem}.pkl\n\n{finding.detail}\n"
        )


def _extension(target: str, finding: Finding) -> str:
    if target == "video":
        return finding.payload[1]
    if target == "image" and finding.case[0] == "seed":
        return "." + finding.case[1].rsplit(".", 1)[-1]
    return {"tar": ".tar", "job": ".yaml"}.get(target, ".bin")


def print_reports(reports: list[Report], out: Path | None) -> None:
    print(f"{'target':<7} {'examples':>8} {'seconds':>8} {'ex/s':>7} {'shrinks':>7} {'findings':>8}  outcomes")
    for r in reports:
        outcomes = ", ".join(f"{k} {v}" for k, v in r.outcomes.most_common())
        print(
            f"{r.target:<7} {r.examples:>8} {r.seconds:>8.1f} {r.examples / max(r.seconds, 1e-9):>7.1f} "
            f"{r.shrink_calls:>7} {len(r.findings):>8}  {outcomes}"
        )
    for r in reports:
        for i, f in enumerate(sorted(r.findings.values(), key=lambda f: f.signature)):
            where = f" -> {out / r.target}/{i:02d}-*" if out is not None else ""
            print(f"  {r.target}: {f.kind}: {f.signature} (input of {_size(f.payload)} bytes){where}")


def replay(path: Path) -> int:
    """Run a saved finding again, in this process, and print its verdict."""
    saved = pickle.loads(path.read_bytes())
    verdict = fuzz_targets.CHECKS[saved["target"]](saved["payload"], 20.0)
    print(f"{saved['target']}: outcome {verdict.outcome}; {verdict.kind or 'contract held'} {verdict.signature}")
    if verdict.detail:
        print(verdict.detail)
    return 1 if verdict.kind else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    parser.add_argument("--examples", type=int, default=200, help="examples per target")
    parser.add_argument("--seconds", type=float, default=120.0, help="budget of the whole run, split between targets")
    parser.add_argument("--shrink-seconds", type=float, default=30.0, help="time to shrink each finding")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per example: more is a hang")
    parser.add_argument("--memory-mb", type=int, default=4096, help="address-space limit of the worker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/fuzz"))
    parser.add_argument("--replay", type=Path, help="a saved finding's .pkl: run it again and print it")
    args = parser.parse_args(argv)
    if args.replay:
        return replay(args.replay)
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "decoders.log"
    budget = Budget(args.examples, args.seconds, args.shrink_seconds, args.timeout, args.memory_mb, args.seed, str(log))
    reports = run_fuzz(args.targets, budget, args.out)
    print_reports(reports, args.out)
    print(f"decoders' messages: {log}")
    return 1 if any(r.findings for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
