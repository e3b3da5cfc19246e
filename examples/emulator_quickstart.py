"""Start the built-in Segmind emulator in-process, generate one image through it, save it.

No API key, no network: this is the smallest end-to-end check that a machine can run batchgen,
and a template for using the emulator from your own Python code or tests.

    python examples/emulator_quickstart.py [OUT_DIR] [PROMPT]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp

from batchgen.emulator import Emulator, EmulatorConfig

KEY = {"x-api-key": "emulator-key"}  # the emulator's default key


async def generate_one(prompt: str) -> tuple[str, bytes]:
    """Submit one job to a fresh emulator, poll it, download the image: (request_id, bytes)."""
    async with Emulator(EmulatorConfig()) as emu, aiohttp.ClientSession() as http:
        print(f"emulator at {emu.base_url}")
        params = {"prompt": prompt, "aspect_ratio": "1:1", "seed": 42}
        async with http.post(f"{emu.base_url}/v2/qwen-image", json=params, headers=KEY) as resp:
            accepted = await resp.json()
        print(f"submitted: request_id={accepted['request_id']}")
        while True:  # the emulator is fast; a real client would back off
            async with http.get(accepted["status_url"], headers=KEY) as resp:
                status = (await resp.json())["status"]
            if status in ("COMPLETED", "FAILED"):
                break
            await asyncio.sleep(0.05)
        print(f"status: {status}")
        async with http.get(accepted["response_url"], headers=KEY) as resp:
            result = await resp.json()
        async with http.get(result["output"]) as resp:  # media URLs need no key
            image = await resp.read()
        print(f"downloaded {len(image)} bytes, seed {result['seed']}")
        return accepted["request_id"], image


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out")
    text = sys.argv[2] if len(sys.argv) > 2 else "a lighthouse on a cliff at dawn"
    request_id, data = asyncio.run(generate_one(text))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{request_id}.png").write_bytes(data)
    print(f"wrote {out / f'{request_id}.png'}")
