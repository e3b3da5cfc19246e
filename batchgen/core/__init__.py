"""Pure rules: no asyncio, no aiohttp, no file I/O; everything here is tested with plain values."""
