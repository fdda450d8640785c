"""Request bodies read with a bound: the limit holds whatever Content-Length claims."""

from __future__ import annotations

from starlette.requests import Request


class BodyTooLarge(Exception):
    pass


def media_type(request: Request) -> str:
    """The Content-Type without its parameters, lower case."""
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def declared_too_large(request: Request, max_bytes: int) -> bool:
    declared = request.headers.get("content-length")
    return declared is not None and (not declared.isdigit() or int(declared) > max_bytes)


async def read_bounded(request: Request, max_bytes: int) -> bytes:
    """Raises BodyTooLarge as soon as more than ``max_bytes`` arrived."""
    if declared_too_large(request, max_bytes):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
