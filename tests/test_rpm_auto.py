"""`--rpm auto` against the emulator's strict limit of 50 a window (time scaled: a window of 1 s):
it widens from the lowest plan's rate, settles just under the limit, records what it learned,
and a resumed run starts there instead of probing again."""

from __future__ import annotations

import json
from pathlib import Path

from batchgen.core.lifecycle import replay
from batchgen.emulator import EmulatorConfig
from batchgen.run.runner import EMULATOR_MINUTE, run_manifest

LIMIT = 50


def manifest(tmp_path: Path, n: int, start: int = 0) -> Path:
    rows = "".join(json.dumps({"prompt": f"rate {i}"}) + "\n" for i in range(start, start + n))
    (tmp_path / f"jobs{start}.jsonl").write_text(rows, encoding="utf-8")
    path = tmp_path / f"m{start}.yaml"
    path.write_text(f"model: qwen-image\nrpm: auto\njobs_file: jobs{start}.jsonl\n", "utf-8")
    return path


def emulator() -> EmulatorConfig:
    return EmulatorConfig(seed=7, rpm=LIMIT, rate_window=EMULATOR_MINUTE)


def learned(out: Path) -> float | None:
    with (out / "ledger.jsonl").open("rb") as lines:
        return replay(lines).rate


async def test_rpm_auto_settles_just_under_the_limit_and_a_resume_starts_there(tmp_path: Path):
    out = tmp_path / "out"
    first = await run_manifest(
        manifest(tmp_path, 400), out=out, emulator=emulator(), quiet=True, catalog=False
    )
    assert first.stats.completed == 400
    rate = learned(out)
    assert rate is not None
    assert 45 <= rate <= LIMIT
    assert first.stats.rate_limited >= 1  # it found the limit by meeting it
    # Found while probing; in time scaled to a 1 s minute a loaded machine can still put one send
    # a few ms early after the rate settled (tests/fast/test_rpm_auto_rule.py holds it exactly).
    assert first.stats.rate_limited_probing >= 1
    assert first.stats.rate_limited - first.stats.rate_limited_probing <= 1
    # A second run in the folder starts at the learned rate: no slow start, no probe 429s.
    second = await run_manifest(
        manifest(tmp_path, 150, start=400), out=out, emulator=emulator(), quiet=True,
        catalog=False,
    )  # fmt: skip
    assert second.stats.completed == 150
    assert second.stats.rate_limited <= 1  # starts at the learned rate: no slow start
    assert second.summary["wall_seconds"] < 150 / 45 * EMULATOR_MINUTE + 1.5
