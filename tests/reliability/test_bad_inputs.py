"""Bad inputs (issue 8): broken or hostile manifests are refused with a clear message and exit 3,
before a single request: the emulator's `requests_total` stays 0 and no output folder appears.

The committed corpus lives in `corpus/` (listed with the expected fragment in
`corpus/expected.txt`); cases too big or too binary to commit are built here into tmp_path. All
go through the real CLI in-process (click's CliRunner: ~50 ms a case, where a subprocess costs a
second) against one emulator process; one case also runs as a process to measure its memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchgen.cli.main import main
from batchgen.manifest.sources import MAX_LINE_BYTES, MAX_YAML_BYTES, TOO_BIG
from batchgen.manifest.yamlload import MAX_DEPTH
from tests.procs import emulator_process, server_stats

CORPUS = Path(__file__).parent / "corpus"
KEY = "emulator-key"
HUNDRED_MB = 100 * 1024 * 1024


@dataclass(frozen=True)
class Case:
    name: str
    fragment: str  # what the error message must say
    build: Callable[[Path], Path]  # writes the manifest into a folder, returns its path


def _committed() -> list[Case]:
    cases = []
    for line in (CORPUS / "expected.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, fragment, _why = (part.strip() for part in line.split(" | "))
        cases.append(Case(name, fragment, lambda _tmp, name=name: CORPUS / name))
    return cases


def _file(name: str, content: bytes) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(content)
        return path

    return build


def _long_jsonl_line(tmp: Path) -> Path:
    """A valid JSON job whose prompt makes its line 100 MB, followed by a good line."""
    path = tmp / "long-line.jsonl"
    with path.open("wb") as handle:
        handle.write(b'{"prompt": "')
        chunk = b"a" * (1 << 20)
        for _ in range(HUNDRED_MB // len(chunk)):
            handle.write(chunk)
        handle.write(b'"}\n{"prompt": "a red fox"}\n')
    return path


def _big_yaml(tmp: Path) -> Path:
    """A 100 MB YAML file (sparse: the size alone must refuse it, before reading)."""
    path = tmp / "big.yaml"
    with path.open("wb") as handle:
        handle.write(b"defaults:\n  prompt: ")
        handle.truncate(HUNDRED_MB)
    return path


def _billion_laughs() -> bytes:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):  # 9**10 values once expanded, from 10 lines
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return ("\n".join(lines) + "\ndefaults:\n  prompt: x\n  _laughs: *a9\n").encode()


GENERATED = [
    Case("jsonl-100mb-line", f":1: is longer than {MAX_LINE_BYTES:,} bytes", _long_jsonl_line),
    Case("yaml-100mb", TOO_BIG, _big_yaml),
    Case("yaml-endless-device", TOO_BIG, lambda _tmp: Path("/dev/zero")),
    Case("missing-file", ": cannot be read: No such file", lambda tmp: tmp / "nowhere.yaml"),
    Case("billion-laughs", "expand to more than 100,000 values",
         _file("b.yaml", _billion_laughs())),
    Case("self-alias", ":1: is refused: it has an alias that refers to itself",
         _file("s.yaml", b"a: &a [*a]\ndefaults: {prompt: x}\n")),
    Case("yaml-deep-flow", f"is nested deeper than {MAX_DEPTH} levels",
         _file("d.yaml", b"defaults: " + b"[" * 10_000 + b"]" * 10_000 + b"\n")),
    Case("yaml-deep-map", f"is nested deeper than {MAX_DEPTH} levels",
         _file("m.yaml", b"defaults: " + b"{a: " * 10_000 + b"1" + b"}" * 10_000 + b"\n")),
    Case("jsonl-deep-10000", f":1: is nested deeper than {MAX_DEPTH} levels",
         _file("d.jsonl", b'{"prompt": ' + b"[" * 10_000 + b"]" * 10_000 + b"}\n")),
    Case("jsonl-deep-100", f":1: is nested deeper than {MAX_DEPTH} levels",
         _file("e.jsonl", b'{"prompt": "x", "_n": ' + b"[" * 100 + b"]" * 100 + b"}\n")),
    Case("yaml-nul", ":2: is not valid YAML: character #x0000 is not allowed",
         _file("n.yaml", b'defaults:\n  prompt: "a\x00b"\n')),
    Case("jsonl-nul", ":2: is not valid JSON: Invalid control character",
         _file("n.jsonl", b'{"prompt": "ok"}\n{"prompt": "a\x00b"}\n')),
    Case("yaml-latin1", ":2: is not UTF-8 text (byte 0xe9)",
         _file("l.yaml", b'defaults:\n  prompt: "caf\xe9"\n')),
    Case("jsonl-latin1", ":3: is not UTF-8 text (byte 0xe9)",
         _file("l.jsonl", b'{"prompt": "a"}\n{"prompt": "b"}\n{"prompt": "caf\xe9"}\n')),
    Case("yaml-utf16-bom", ":1: is not UTF-8 text (byte 0xff)",
         _file("u.yaml", "defaults:\n  prompt: fox\n".encode("utf-16"))),
    Case("yaml-bom-line-kept", ":3: steps = 0", _file("bom.yaml",
         b"\xef\xbb\xbfdefaults:\n  prompt: a\n  steps: 0\n")),
    Case("yaml-crlf-line-kept", ":3: steps = 0", _file("crlf.yaml",
         b"defaults:\r\n  prompt: a\r\n  steps: 0\r\n")),
    Case("jsonl-crlf-line-kept", ":2: job row 2: steps = 0",
         _file("crlf.jsonl", b'{"prompt": "a"}\r\n{"prompt": "b", "steps": 0}\r\n')),
    Case("jsonl-surrogate", ":1: contains an escaped lone UTF-16 surrogate",
         _file("x.jsonl", b'{"prompt": "a\\ud800b"}\n')),
    Case("yaml-surrogate", ":2: contains an escaped lone UTF-16 surrogate",
         _file("x.yaml", b'defaults:\n  prompt: "a\\ud800b"\n')),
    Case("jsonl-many-bad-lines", "… and 1950 more",
         _file("many.jsonl", b'{"prompt": 1}\n' * 2_000)),
]  # fmt: skip

CASES = _committed() + GENERATED


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """One emulator process for every case: each must leave its counters at 0."""
    yield from emulator_process()


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env={"SEGMIND_API_KEY": KEY})
    assert isinstance(result.exception, SystemExit | None), result.exception
    return result.exit_code, result.stderr


def test_the_corpus_is_indexed():
    """Every committed file has its expectation in corpus/expected.txt, and the count is kept."""
    listed = {case.name for case in _committed()}
    assert listed == {p.name for p in CORPUS.iterdir() if p.name != "expected.txt"}
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_before_any_request(case: Case, server: str, tmp_path: Path):
    """run and validate: exit 3, the clear message on stderr, no traceback, nothing sent or made."""
    manifest = case.build(tmp_path)
    out = tmp_path / "out"
    code, stderr = _invoke("run", str(manifest), "--base-url", server, "--out", str(out), "-q")
    assert code == 3, stderr
    assert case.fragment in stderr
    assert str(manifest) in stderr  # it names the file
    assert "Traceback" not in stderr
    assert "nothing was sent" in stderr
    assert not out.exists()
    code, stderr = _invoke("validate", str(manifest))
    assert (code, case.fragment in stderr, "Traceback" in stderr) == (3, True, False), stderr
    assert server_stats(server)["requests_total"] == 0


_MEASURE = """
import resource, sys
from batchgen.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    sys.stderr.write(f"\\nmaxrss_kb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n")
    raise
"""


def _peak_rss(*args: str) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, *args],
        capture_output=True, text=True, timeout=120, env={**os.environ},
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    return int(proc.stderr.rsplit("maxrss_kb=", 1)[1]) * 1024


def test_a_100_mb_line_is_refused_in_bounded_memory(tmp_path: Path):
    """The line is skipped in chunks: memory grows by a small fraction of the line's size over
    the same command refusing a one-line file."""
    manifest = _long_jsonl_line(tmp_path)
    small = _file("small.jsonl", b'{"prompt": 1}\n')(tmp_path)
    baseline, peak = _peak_rss("validate", str(small)), _peak_rss("validate", str(manifest))
    size = manifest.stat().st_size
    print(json.dumps({"line_bytes": size, "peak_rss": peak, "baseline_rss": baseline}))
    assert peak - baseline < size // 10
    assert size > MAX_YAML_BYTES  # the YAML case above is refused by its size alone
