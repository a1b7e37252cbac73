"""Raw HTTP load on ``POST /jobs``: ``wrk`` with a Lua script when installed, else a closed loop
of aiohttp coroutines. Either way ``connections`` requests are in flight for ``seconds``.

Rule: only successful answers count; refusals (429...) and socket errors are reported beside the
rate, never folded into it.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

WRK_GRACE_S = 30.0


@dataclass(frozen=True)
class HttpLoad:
    jobs_per_s: float
    refused: int  # answers other than 2xx
    socket_errors: int


def generator() -> str:
    """Which load generator runs: ``wrk`` when it is on the PATH, else ``aiohttp``."""
    return "wrk" if shutil.which("wrk") else "aiohttp"


def wrk_script(path: Path, body: bytes, token: str) -> Path:
    lua_body = body.decode().replace("\\", "\\\\").replace('"', '\\"')
    path.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = "{lua_body}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )
    return path


async def run_wrk(
    url: str, body: bytes, token: str, connections: int, seconds: float, scratch: Path
) -> HttpLoad:
    script = wrk_script(scratch / "post-job.lua", body, token)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s"]
    proc = await asyncio.create_subprocess_exec(
        *command, "-s", str(script), url, stdout=asyncio.subprocess.PIPE
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), seconds + WRK_GRACE_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode()
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", text)
    if proc.returncode != 0 or total is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{text}")
    requests = int(total.group(1))
    elapsed_s = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    refused_match = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    refused = int(refused_match.group(1)) if refused_match else 0
    errors_match = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    errors = sum(int(n) for n in errors_match.groups()) if errors_match else 0
    return HttpLoad((requests - refused) / elapsed_s, refused, errors)


async def run_aiohttp(
    url: str, body: bytes, token: str, connections: int, seconds: float
) -> HttpLoad:
    done = refused = errors = 0
    stop_at = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def caller() -> None:
            nonlocal done, refused, errors
            while time.monotonic() < stop_at:
                try:
                    async with session.post(url, data=body, headers=headers) as reply:
                        await reply.read()
                        if reply.status < 300:
                            done += 1
                        else:
                            refused += 1
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1

        started = time.monotonic()
        await asyncio.gather(*(caller() for _ in range(connections)))
        elapsed_s = time.monotonic() - started
    return HttpLoad(done / elapsed_s, refused, errors)


async def post_jobs_load(
    url: str, job: dict[str, object], token: str, connections: int, seconds: float, scratch: Path
) -> HttpLoad:
    body = json.dumps(job, separators=(",", ":")).encode()
    if generator() == "wrk":
        return await run_wrk(url, body, token, connections, seconds, scratch)
    return await run_aiohttp(url, body, token, connections, seconds)
