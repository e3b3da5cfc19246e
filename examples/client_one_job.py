"""One job at a time with the SDK-shaped async client: submit, wait, download.

    python examples/client_one_job.py "a lighthouse at dawn" [OUT_FILE]

Starts the built-in emulator so it runs anywhere; against the real service, drop the emulator
and use `batchgen.Client()` (the key comes from SEGMIND_API_KEY).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import batchgen
from batchgen.emulator import Emulator


async def main(prompt: str) -> bytes:
    async with (
        Emulator() as emu,
        # typical_seconds: when to look first; the real qwen-image takes ~28 s, the emulator 0.05
        batchgen.Client("emulator-key", emu.base_url, typical_seconds=0.05) as client,
    ):
        job = await client.submit("qwen-image", prompt=prompt, aspect_ratio="1:1", seed=7)
        print(f"submitted {job.request_id}")
        try:
            result = await job.wait(timeout=600)
        except batchgen.InferenceFailed as exc:
            sys.exit(f"the server refused the job: {exc.error}")
        print(f"completed in {result['metrics'].get('inference_time')} s, seed {result['seed']}")
        return await client.download(result["output"])


if __name__ == "__main__":
    text = sys.argv[1] if len(sys.argv) > 1 else "a lighthouse at dawn"
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("out") / "one-job.png"
    data = asyncio.run(main(text))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    print(f"wrote {target} ({len(data)} bytes)")
