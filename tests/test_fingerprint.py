"""Job fingerprints (the catalogue's key), and recovering them from ledger rows. No I/O."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

from batchgen.core.fingerprint import fingerprint, public_location, row_fingerprint
from batchgen.core.jobs import Job
from batchgen.core.metadata import metadata_row
from batchgen.core.wire import Poll
from batchgen.manifest.loader import Manifest
from batchgen.models.registry import schema_for

ROOT = Path(__file__).resolve().parent.parent
QWEN = frozenset(schema_for("qwen-image").params)  # type: ignore[union-attr]

Load = Callable[..., Manifest]


def jobs(load: Load, text: str, name: str = "m.yaml") -> list[Job]:
    return list(load(name, text).jobs())


def row_of(job: Job, poll: Poll | None = None) -> dict[str, object]:
    return metadata_row(job, f"{job.id}.png", "req-1", poll or Poll("COMPLETED"))


def test_same_content_same_fingerprint_whatever_the_id_or_labels(load: Load):
    """An explicit id, a generated id and different annotations: one image, one fingerprint."""
    a = jobs(load, "jobs:\n  - {id: cat, prompt: a cat, seed: 5, guidance: 4, _l: x}\n", "a.yaml")
    b = jobs(load, "jobs:\n  - {prompt: a cat, seed: 5, guidance: 4, _l: y}\n", "b.yaml")
    c = jobs(load, "jobs:\n  - {prompt: a cat, seed: 5, guidance: 4.0}\n", "c.yaml")  # the same
    assert a[0].id != b[0].id
    assert fingerprint(a[0]) == fingerprint(b[0]) == fingerprint(c[0]) is not None


def test_anything_sent_changes_it(load: Load):
    base = jobs(load, "jobs:\n  - {prompt: a cat, seed: 5}\n")[0]
    for other in ("{prompt: a cat, seed: 6}", "{prompt: a dog, seed: 5}",
                  "{prompt: a cat, seed: 5, steps: 20}"):  # fmt: skip
        job = jobs(load, f"jobs:\n  - {other}\n", "o.yaml")[0]
        assert fingerprint(job) != fingerprint(base)
    copies = jobs(load, "repeat: 2\njobs:\n  - {prompt: a cat, seed: 5}\n", "r.yaml")
    assert fingerprint(copies[0]) == fingerprint(base)
    assert fingerprint(copies[1]) not in (fingerprint(base), None)


def test_seed_chosen_by_batchgen_counts_one_left_to_the_server_never():
    resolved = Job("j-0", "qwen-image", {"prompt": "x", "seed": 1234}, seed_resolved=True)
    assert fingerprint(resolved) is not None
    for params in ({"prompt": "x"}, {"prompt": "x", "seed": -1}, {"prompt": "x", "seed": "7"}):
        assert fingerprint(Job("j-1", "some/model", params)) is None


def test_input_images_by_content_and_never_by_url():
    pixel = base64.b64encode(b"\x89PNG fake bytes").decode()
    inline = Job("a", "edit", {"prompt": "x", "seed": 1, "image": f"data:image/png;base64,{pixel}"})
    same = Job("b", "edit", {"prompt": "x", "seed": 1, "image": f"data:image/png;base64,{pixel}"})
    other = Job("c", "edit", {"prompt": "x", "seed": 1, "image": "data:image/png;base64,AAAA"})
    assert fingerprint(inline) == fingerprint(same) is not None
    assert fingerprint(other) != fingerprint(inline)
    by_url = Job("d", "edit", {"prompt": "x", "seed": 1, "image": "https://host/cat.png"})
    assert fingerprint(by_url) is None


def test_rows_give_back_the_fingerprint_of_their_job(load: Load):
    """What `catalog add` reads from a ledger agrees with what a run computes from the Job, for
    explicit ids, generated ids, fixed and batchgen-chosen seeds, repeats and duplicate rows."""
    manifests = [
        (ROOT / "jobs" / "sweep.yaml").read_text(),
        "repeat: 3\njobs:\n  - {prompt: a cat}\n  - {id: dog, prompt: a dog, seed: 9}\n",
        "repeat: 2\njobs:\n  - {prompt: a fox, seed: 3, guidance: 4.5}\n",
        "jobs:\n  - {prompt: twin}\n  - {prompt: twin}\n  - {prompt: twin, seed: 1}\n"
        "  - {prompt: twin, seed: 1}\n",
    ]
    checked = 0
    for number, text in enumerate(manifests):
        for job in jobs(load, text, f"m{number}.yaml"):
            assert fingerprint(job) is not None
            assert row_fingerprint(row_of(job), QWEN) == fingerprint(job), job
            checked += 1
    assert checked == 36 + 6 + 2 + 4


def test_rows_of_pass_through_models(load: Load):
    """Without a schema the row cannot say if the seed was sent: only provable seeds count."""
    fixed = jobs(load, "model: some/model\njobs:\n  - {prompt: a, seed: 4}\n")[0]
    chosen = jobs(load, "model: some/model\njobs:\n  - {prompt: a, seed: -1}\n", "c.yaml")[0]
    explicit = jobs(load, "model: some/model\njobs:\n  - {id: e, prompt: a, seed: -1}\n", "e.yaml")
    for job in (fixed, chosen, explicit[0]):
        assert row_fingerprint(row_of(job), None) == fingerprint(job) is not None
    # The server chose the seed (none was sent): the row has one, but it proves nothing.
    left = jobs(
        load, "model: some/model\njobs:\n  - {prompt: a}\n  - {id: k, prompt: b}\n", "l.yaml"
    )
    for job in left:
        assert fingerprint(job) is None
        assert row_fingerprint(row_of(job, Poll("COMPLETED", seed=77)), None) is None
    # An explicit id with a seed that is not batchgen's: it may be the server's, so no.
    fixed_explicit = jobs(
        load, "model: some/model\njobs:\n  - {id: f, prompt: a, seed: 4}\n", "f.yaml"
    )
    assert row_fingerprint(row_of(fixed_explicit[0]), None) is None


def test_a_tampered_generated_row_is_not_trusted(load: Load):
    job = jobs(load, "jobs:\n  - {prompt: a cat, seed: 5}\n")[0]
    row = row_of(job)
    row["prompt"] = "a dog"  # the id no longer hashes from these params
    assert row_fingerprint(row, QWEN) is None


def test_locations_are_kept_without_credentials():
    assert public_location("s3://AKIA:secret@bucket/prefix/") == "s3://bucket/prefix"
    assert (
        public_location("https://u:p@host:9000/b/p?X-Amz-Signature=abc#f")
        == "https://host:9000/b/p"
    )
    assert public_location("/data/out") == "/data/out"
