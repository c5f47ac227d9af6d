"""A minimal HTTP/1.1 notification receiver for benchmarks (its own process, asyncio, keep-alive).

Counts POSTed notifications and distinct notification ids; ``GET /count`` answers both as JSON.
Usage: python bench/_receiver.py PORT
"""

from __future__ import annotations

import asyncio
import json
import sys

received = 0
ids: set[str] = set()


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global received
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            length = 0
            for line in header_lines:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
            if request_line.startswith("POST"):
                received += 1
                ids.add(json.loads(body)["id"])
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            else:
                answer = json.dumps({"received": received, "distinct": len(ids)}).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(answer)).encode()
                    + b"\r\n\r\n"
                    + answer
                )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
