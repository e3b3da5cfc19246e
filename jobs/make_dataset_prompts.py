"""Regenerate jobs/dataset-prompts.jsonl: a few hundred varied prompts, deterministically.

Run from the repository root: `python jobs/make_dataset_prompts.py`. The output is committed; this
script exists so the file can be reviewed and changed as a recipe rather than as 300 lines.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

SUBJECTS = [
    "a red fox",
    "an old oak tree",
    "a lighthouse",
    "a vintage bicycle",
    "a snowy owl",
    "a bowl of ramen",
    "a mountain cabin",
    "a koi pond",
    "a desert caravan",
    "a robot gardener",
    "a street market",
    "a sailing ship",
    "a glass greenhouse",
    "a sleeping cat",
    "a jazz trio",
    "a hot air balloon",
    "a stone bridge",
    "a field of sunflowers",
    "a city tram",
    "a bookshop",
]
SETTINGS = [
    "at dawn",
    "in heavy rain",
    "under a starry sky",
    "in autumn fog",
    "at golden hour",
    "in deep winter",
    "on a summer afternoon",
    "at blue hour",
]
STYLES = [
    ("photo", "35mm film photograph"),
    ("watercolor", "loose watercolor painting"),
    ("ink", "ink drawing with cross-hatching"),
    ("oil", "impressionist oil painting"),
]
ASPECTS = ["1:1", "3:2", "2:3", "16:9"]


def main() -> None:
    rng = random.Random(20240601)
    combos = list(itertools.product(SUBJECTS, SETTINGS, STYLES))
    rng.shuffle(combos)
    out = Path(__file__).with_name("dataset-prompts.jsonl")
    with out.open("w", encoding="utf-8") as f:
        for subject, setting, (style, style_text) in combos[:320]:
            row = {
                "prompt": f"{subject} {setting}, {style_text}",
                "aspect_ratio": rng.choice(ASPECTS),
                "_subject": subject.split(" ", 1)[1],
                "_style": style,
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
