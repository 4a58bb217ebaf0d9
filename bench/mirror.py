"""Benchmark: the journal mirror (``--mirror``) during a step that prints many lines.

Prints figures, asserts nothing.  A real step (engine -> local executor -> journal) runs
``for i in $(seq 1 N); do echo "line $i of the step"; done`` (default 100,000 lines, a
stream of about a second; ``--burst``: ``seq 1 N``, all at once) once without a mirror and once with a mirror on a
loopback OpenSSH server (its own throwaway keys, strict known_hosts, SFTP), and reports:

1. the step's wall time with and without the mirror (the mirror must not slow it);
2. the mirror's lag while the step runs, sampled every 10 ms: records and bytes written
   here but not yet acknowledged (remote fsync answered), max and p50;
3. how long after the step's end every record was acknowledged;
4. write+fsync round trips, and records and bytes per round trip.

Usage: ``.venv/bin/python bench/mirror.py [--lines N] [--runs N] [--burst]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BOOK = """<!-- runbook: target=local -->
# Mirror Benchmark

## Phase 1: Output (1 hour)

### Task BENCH-001: Stream lines

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Steps

1. **Print {lines} lines**

```bash
{command}
```
"""


async def _one(book: Path, store: Path, ssh_config: Path | None, remote: Path) -> dict[str, float]:
    from runbook.parse.parser import parse_file
    from runbook.targets.inventory import Inventory
    from sessions.engine.engine import Engine
    from sessions.engine.session import Session
    from sessions.team.mirror import JournalMirror, MirrorDest

    session = Session.create(parse_file(str(book)), root=store)
    mirror = None
    if ssh_config is not None:
        mirror = JournalMirror(session, MirrorDest.parse(f"backup-jump:{remote}"), ssh_config=str(ssh_config))
        mirror.start()
        while not mirror.status.state.following:  # connected before the step starts
            await asyncio.sleep(0.01)
    engine = Engine(session, Inventory.load(None))
    lags: list[tuple[int, int]] = []
    running = True

    async def sample() -> None:
        while running and mirror is not None:
            st = mirror.status
            lags.append((st.lag, session.journal.size - st.acked_bytes))
            await asyncio.sleep(0.01)

    sampler = asyncio.get_running_loop().create_task(sample())
    t0 = time.perf_counter()
    await engine.run_step("BENCH-001", 1)
    step_s = time.perf_counter() - t0
    caught_up_s = 0.0
    if mirror is not None:
        t1 = time.perf_counter()
        while mirror.status.lag:
            await asyncio.sleep(0.002)
        caught_up_s = time.perf_counter() - t1
    running = False
    await sampler
    await engine.close()
    session.close("bench")
    out: dict[str, float] = {"step_s": step_s, "records": session.journal.count, "bytes": session.journal.size}
    if mirror is not None:
        st = await mirror.finish()
        remote_file = remote / session.id / "journal.jsonl"
        out.update(caught_up_s=caught_up_s, writes=mirror.writes, acked=st.acked_seq,
                   same=float(remote_file.read_bytes() == session.journal.path.read_bytes()),
                   lag_max=max(r for r, _ in lags), lag_p50=statistics.median(r for r, _ in lags),
                   lag_bytes_max=max(b for _, b in lags), lag_bytes_p50=statistics.median(b for _, b in lags))
    return out


def main() -> None:
    from tests.integration.sshd import SSHFleet

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--burst", action="store_true", help="seq 1 N: every line at once")
    args = ap.parse_args()
    command = f"seq 1 {args.lines}" if args.burst else f'for i in $(seq 1 {args.lines}); do echo "line $i of the step"; done'
    with tempfile.TemporaryDirectory(prefix="bench-mirror-") as tmp:
        root = Path(tmp)
        book = root / "book.md"
        book.write_text(BOOK.format(lines=args.lines, command=command))
        with SSHFleet.start(root / "fleet", ["mirror"], base=48) as fleet:
            config = root / "ssh_config"
            config.write_text(fleet.ssh_config({"backup-jump": "mirror"}))
            for run in range(args.runs):
                plain = asyncio.run(_one(book, root / f"plain-{run}", None, root / "remote"))
                mirrored = asyncio.run(_one(book, root / f"mirrored-{run}", config, root / "remote"))
                print(f"run {run + 1}: {command}: {int(mirrored['records'])} records, "
                      f"{mirrored['bytes'] / 1e6:.1f} MB journal")
                print(f"  step wall: {plain['step_s']:.2f} s without mirror, {mirrored['step_s']:.2f} s with")
                print(f"  lag while running (every 10 ms): max {int(mirrored['lag_max'])} records / "
                      f"{mirrored['lag_bytes_max'] / 1024:.0f} KB, p50 {mirrored['lag_p50']:.0f} records / "
                      f"{mirrored['lag_bytes_p50'] / 1024:.0f} KB")
                print(f"  all acknowledged {mirrored['caught_up_s'] * 1000:.0f} ms after the step's end; "
                      f"{int(mirrored['writes'])} write+fsync round trips "
                      f"({mirrored['records'] / max(1, mirrored['writes']):.0f} records, "
                      f"{mirrored['bytes'] / max(1, mirrored['writes']) / 1024:.0f} KB each); "
                      f"remote == local: {bool(mirrored['same'])}")


if __name__ == "__main__":
    main()
