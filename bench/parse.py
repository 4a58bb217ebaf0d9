"""Parse time of the PROD checklist, of the whole tests/corpus (real runbooks), and of a generated 2,000-task runbook.

    .venv/bin/python bench/parse.py [--runs N] [--tasks N] [--profile]

Prints the median and minimum wall-clock and CPU time of N runs (CPU time is the steadier
figure on a loaded machine); targets: PROD < 20 ms, 2,000 tasks < 1 s.
The garbage collector is left as the parser leaves it (disabled during a parse).
Figures only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runbook.lint.lint import lint  # noqa: E402
from runbook.parse.parser import parse  # noqa: E402

COMPACT = """### Task GEN-{n:04d}: Generated task {n}

- **Duration**: {minutes} minutes
- **Dependencies**: {deps}
- **Risk Level**: {risk}

#### Prerequisites
- [ ] Change ticket approved for {n}

#### Steps

1. **Restart node {n}**
<!-- runbook: target=workers serial -->
```bash
sudo systemctl restart kubelet && echo "restarted <NODE_{n}> $NODE_NAME"
```
Expected: `restarted`

#### Acceptance Criteria
- [ ] Node {n} Ready

#### Rollback Procedure
```bash
sudo systemctl stop kubelet
```

"""

FULL = """### Task GEN-{n:04d}: Generated task {n}

- **Category**: Generated
- **Duration**: {minutes} minutes
- **Dependencies**: {deps}
- **Risk Level**: {risk}

#### Prerequisites

- [ ] Change ticket approved for {n}
- [ ] Host group reachable

#### Steps

1. **Inspect node {n}**

```bash
kubectl get node node-{n} -o wide
ping -c 3 10.0.{a}.{b} || {{ echo "FAIL: $ip"; exit 1; }}
```

Expected: `Ready`

2. **Apply change {n}** (serial)

<!-- runbook: target=workers serial -->
```bash
sudo systemctl restart kubelet
echo "token <TOKEN_{n}> for $NODE_NAME"
```

#### Acceptance Criteria

- [ ] Node {n} Ready
- [ ] No alerts fired

#### Rollback Procedure

```bash
sudo systemctl stop kubelet
```

#### Notes

- **Generated**: task {n} of the benchmark

---

"""


def generated(tasks: int, shape: str = "compact") -> str:
    template = COMPACT if shape == "compact" else FULL
    parts = ["# Generated Runbook\n\n## Overview\n\n- **Environment**: BENCH\n\n"]
    per_phase = 100
    for n in range(tasks):
        if n % per_phase == 0:
            parts.append(f"## Phase {n // per_phase}: Block {n // per_phase} (2 days)\n\n**Risk Level**: HIGH\n\n")
        deps = f"GEN-{n - 1:04d}" if n % 3 else "None"
        risk = ("LOW", "MEDIUM", "HIGH")[n % 3]
        parts.append(template.format(n=n, minutes=15 + n % 45, deps=deps, risk=risk, a=n // 250, b=n % 250))
    return "".join(parts)


def timed(label: str, text: str, runs: int, with_lint: bool) -> None:
    times = []
    cpu = []
    rb = None
    for _ in range(runs):
        start, cstart = time.perf_counter(), time.process_time()
        rb = parse(text, label)
        if with_lint:
            lint(rb)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cstart)
    assert rb is not None
    what = "parse+lint" if with_lint else "parse"
    print(
        f"{label:<40} {what:<10} lines={rb.line_count:>6} tasks={len(rb.tasks):>5}  "
        f"wall median {statistics.median(times) * 1000:7.1f} ms (min {min(times) * 1000:7.1f})  "
        f"cpu median {statistics.median(cpu) * 1000:7.1f} ms (min {min(cpu) * 1000:7.1f})  n={runs}"
    )


def timed_corpus(runs: int, with_lint: bool) -> None:
    """All of tests/corpus/*.md parsed one after the other: the total per pass."""
    texts = [(p.name, p.read_text(encoding="utf-8")) for p in sorted((ROOT / "tests" / "corpus").glob("*.md"))
             if p.name != "SOURCES.md"]
    times, cpu = [], []
    lines = tasks = 0
    for _ in range(runs):
        start, cstart = time.perf_counter(), time.process_time()
        lines = tasks = 0
        for name, text in texts:
            rb = parse(text, name)
            if with_lint:
                lint(rb)
            lines += rb.line_count
            tasks += len(rb.tasks)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cstart)
    what = "parse+lint" if with_lint else "parse"
    label = f"tests/corpus ({len(texts)} files, total)"
    print(
        f"{label:<40} {what:<10} lines={lines:>6} tasks={tasks:>5}  "
        f"wall median {statistics.median(times) * 1000:7.1f} ms (min {min(times) * 1000:7.1f})  "
        f"cpu median {statistics.median(cpu) * 1000:7.1f} ms (min {min(cpu) * 1000:7.1f})  n={runs}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--big-runs", type=int, default=5)
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--profile", action="store_true", help="cProfile one parse of the generated runbook")
    ap.add_argument("--shape", choices=["compact", "full", "both"], default="both",
                    help="generated tasks: compact (~24 lines: metadata, 1 step, 1 box each section) or full (~48 lines)")
    args = ap.parse_args()
    prod = (ROOT / "checklists" / "prod-k8s-deployment.md").read_text(encoding="utf-8")
    shapes = ["compact", "full"] if args.shape == "both" else [args.shape]
    big = generated(args.tasks, shapes[0])
    parse(prod, "warm-up")
    if args.profile:
        import cProfile
        import pstats

        cProfile.runctx("parse(big, 'gen.md')", globals(), {"big": big, "parse": parse}, "/tmp/parse.prof")
        pstats.Stats("/tmp/parse.prof").sort_stats("cumulative").print_stats(25)
        return 0
    timed("checklists/prod-k8s-deployment.md", prod, args.runs, False)
    timed("checklists/prod-k8s-deployment.md", prod, args.runs, True)
    timed_corpus(args.runs, False)
    timed_corpus(args.runs, True)
    for shape in shapes:
        text = generated(args.tasks, shape)
        timed(f"generated ({args.tasks} tasks, {shape})", text, args.big_runs, False)
        timed(f"generated ({args.tasks} tasks, {shape})", text, args.big_runs, True)
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: figures are noisy on a shared machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
