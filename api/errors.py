"""Every error is a JSON body {"detail": message, "errors": [...]} with the right status; none leaks a trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from search_spaces import UserError

log = logging.getLogger(__name__)


def log_unavailable(request: Request, exc: OperationalError) -> None:
    """The log line of a request that met a busy or unreachable database (answered with a 503)."""
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig)


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str


class ErrorBody(BaseModel):
    detail: str
    errors: list[FieldError] = []


class InvalidField(Exception):
    """A 422 about one field of the request: `loc` as FastAPI names it (("body", "dataset", "path"),
    ("query", "kind"), ...); the body's detail and errors both name it."""

    def __init__(self, loc: tuple[str | int, ...], msg: str):
        super().__init__(msg)
        self.loc, self.msg = list(loc), msg


def error_responses(*codes: int) -> dict[int | str, dict]:
    """`responses=` entries so the OpenAPI spec declares the error bodies a route can return (every route
    that reaches the database may also answer 503)."""
    text = {400: "Bad request", 401: "Missing or invalid token", 403: "Not allowed", 404: "Not found",
            409: "Conflict with the resource's state", 413: "Request too large", 422: "Invalid input",
            429: "Too many open event streams: retry after Retry-After seconds",
            503: "The database is busy: nothing was changed, retry after Retry-After seconds"}
    return {code: {"model": ErrorBody, "description": text[code]} for code in (*codes, 503)}


def describe(errors: list[dict]) -> tuple[str, list[FieldError]]:
    fields = [FieldError(loc=[p for p in e.get("loc", ()) if isinstance(p, str | int)], msg=str(e.get("msg", "")))
              for e in errors]
    summary = "; ".join(f"{'.'.join(str(p) for p in f.loc)}: {f.msg}" for f in fields[:5])
    return summary or "invalid request", fields


def truthful_openapi(app: FastAPI) -> None:
    """Make the spec say what the server sends: FastAPI documents its default validation body (`detail` as a
    list) for 422s, while every error here is an ErrorBody (as JSON, whatever the route's own media type); and
    every route may answer 503, and every route that takes a body 400 (when it does not parse)."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        spec = build()
        error_body = {"$ref": "#/components/schemas/ErrorBody"}
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for code, description in (("422", "Invalid input"), ("503", "The database is busy: retry later")):
                    if code == "422" and code not in responses:
                        continue  # a route without input answers no 422
                    responses.setdefault(code, {"description": description})
                if "requestBody" in operation:  # bytes that do not parse as the declared media type
                    responses.setdefault("400", {"description": "Malformed body"})
                for code, entry in responses.items():
                    if int(code) >= 400:  # errors are JSON even where the route's own answer is not
                        entry["content"] = {"application/json": {"schema": error_body}}
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ErrorBody", ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}"))
        schemas.setdefault("FieldError", FieldError.model_json_schema())
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        summary, fields = describe(list(exc.errors()))
        return JSONResponse(status_code=422, content=ErrorBody(detail=summary, errors=fields).model_dump())

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"detail": str(exc.detail), "errors": []},
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(InvalidField)
    async def _field(request: Request, exc: InvalidField) -> JSONResponse:
        where = ".".join(str(p) for p in exc.loc if p not in ("body", "query", "path"))
        body = ErrorBody(detail=f"{where}: {exc.msg}", errors=[FieldError(loc=exc.loc, msg=exc.msg)])
        return JSONResponse(status_code=422, content=body.model_dump())

    @app.exception_handler(IntegrityError)
    async def _conflict(request: Request, exc: IntegrityError) -> JSONResponse:
        # two requests raced to create the same thing (a user name, an idempotency key): the loser hears so
        return JSONResponse(status_code=409, content={"detail": "it already exists (a concurrent request created "
                                                                "it); nothing was changed", "errors": []})

    @app.exception_handler(OperationalError)
    async def _database_busy(request: Request, exc: OperationalError) -> JSONResponse:
        log_unavailable(request, exc)
        return JSONResponse(status_code=503, headers={"Retry-After": "2"},
                            content={"detail": "the database is busy or unreachable; nothing was changed, retry shortly",
                                     "errors": []})

    @app.exception_handler(UserError)
    async def _user_error(request: Request, exc: UserError) -> JSONResponse:
        # a product error about the request's input that no route turned into a response of its own
        return JSONResponse(status_code=422, content={"detail": str(exc), "errors": []})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": "internal error", "errors": []})


class BodySizeLimit:
    """ASGI middleware: requests whose body exceeds `limit` bytes get 413 before they are read into memory."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await _too_large(send, self.limit)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge(self.limit)
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _too_large(send, self.limit)


class _TooLarge(HTTPException):
    """Raised from inside the body stream (a chunked body has no Content-Length to check first); an
    HTTPException, so that body parsing passes it on as a 413 rather than a parse error."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body larger than {limit} bytes")


async def _too_large(send, limit: int) -> None:
    body = JSONResponse(status_code=413, content={"detail": f"request body larger than {limit} bytes", "errors": []})
    await send({"type": "http.response.start", "status": 413, "headers": body.raw_headers})
    await send({"type": "http.response.body", "body": body.body})
