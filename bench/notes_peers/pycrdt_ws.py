"""pycrdt-websocket's ASGI server (in memory), for bench/notes.py: uvicorn pycrdt_ws:app"""

from __future__ import annotations

from typing import Any

from pycrdt.websocket import ASGIServer, WebsocketServer

websocket_server = WebsocketServer()
inner = ASGIServer(websocket_server)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await websocket_server.__aenter__()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await websocket_server.__aexit__(None, None, None)
                await send({"type": "lifespan.shutdown.complete"})
                return
    else:
        await inner(scope, receive, send)
