"""The HTTP API over `TheraMind`: sessions with streamed replies, patients, runs, the console."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.sse import EventSourceResponse, format_sse_event
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from theramind import errors
from theramind.api import Session, TheraMind, TurnResult, validate_message
from theramind.records import SessionOutcome, TurnRecord
from theramind.safety import crisis_resources
from theramind.web import runs
from theramind.web.security import BodyLimit, ServeOptions, token_matches

log = logging.getLogger(__name__)

# Typed errors and the HTTP status each maps to; the first match in order wins.
STATUS: list[tuple[type[Exception], int]] = [
    (errors.UnknownPatientError, 404),
    (errors.InputError, 422),
    (errors.MemoryScopeError, 422),
    (errors.SessionClosedError, 409),
    (errors.SessionStateError, 409),
    (errors.ModelUnavailableError, 503),
    (errors.ModelError, 502),
    (errors.ConfigError, 500),
    (errors.TheraMindError, 500),
]


def status_of(exc: Exception) -> int:
    """Return the HTTP status of a typed error (a busy session is a conflict, 409)."""
    if type(exc).__name__ == "SessionBusyError":
        return 409
    return next((code for kind, code in STATUS if isinstance(exc, kind)), 500)


def error_body(exc: Exception) -> dict[str, str]:
    """Return the JSON body of an error: its type and its message."""
    return {"error": type(exc).__name__, "message": str(exc)}


class StartRequest(BaseModel):
    """Start the patient's next session, or resume the one left open."""

    profile: dict[str, Any] | None = Field(
        default=None, description="The intake profile; required the first time a patient comes."
    )


class MessageRequest(BaseModel):
    """One patient message."""

    text: str = Field(description="What the patient says.")


class SessionOut(BaseModel):
    """A session as the console needs it at the start."""

    patient_id: str
    session_no: int
    resumed: bool
    status: str
    opening: str
    therapies: list[str]
    phase: str
    risk_open: bool
    resources: list[str] = Field(description="The locale's crisis resources, one per line.")


class TurnOut(BaseModel):
    """A turn: the reply the patient sees, and the record a supervisor reads."""

    reply: str
    closing: bool
    risk_open: bool
    resources: list[str]
    record: TurnRecord


class Registry:
    """One session handle per patient, and one lock per patient so turns never interleave."""

    def __init__(self, mind: TheraMind) -> None:
        self.mind = mind
        self.sessions: dict[str, Session] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    def lock(self, patient_id: str) -> asyncio.Lock:
        """Return the patient's lock."""
        return self.locks.setdefault(patient_id, asyncio.Lock())

    async def start(self, patient_id: str, profile: dict[str, Any] | None) -> Session:
        """Start or resume the patient's session and keep its handle."""
        session = await self.mind.astart_session(patient_id, profile=profile)
        self.sessions[patient_id] = session
        return session

    async def get(self, patient_id: str, session_no: int) -> Session:
        """Return the handle on an open session (resuming it after a server restart)."""
        session = self.sessions.get(patient_id)
        if session is None or session.session_no != session_no:
            store = self.mind.services.store
            if not store.has_patient(patient_id):
                raise errors.UnknownPatientError(f"unknown patient {patient_id!r}")
            unfinished = store.open_session(patient_id)
            if unfinished is None or unfinished[0] != session_no:
                raise errors.SessionStateError(
                    f"session {session_no} of {patient_id!r} is not open; POST "
                    f"/api/patients/{patient_id}/sessions to start the next one"
                )
            session = await self.start(patient_id, None)
        return session

    def forget(self, patient_id: str) -> None:
        """Drop the patient's handle (after the session closed or the patient was erased)."""
        self.sessions.pop(patient_id, None)


def _resources(mind: TheraMind) -> list[str]:
    found = crisis_resources(mind.settings.safety.locale, mind.settings.config_dir_path)
    return found.render().splitlines()


def _risk_open(mind: TheraMind, patient_id: str) -> bool:
    return bool(mind.services.store.risk_events(patient_id, open_only=True))


def _session_out(mind: TheraMind, session: Session) -> SessionOut:
    plan = session.plan
    return SessionOut(
        patient_id=plan.patient_id,
        session_no=plan.session_no,
        resumed=session.resumed,
        status=session.status,
        opening=session.opening,
        therapies=plan.therapies,
        phase=plan.phase,
        risk_open=plan.open_risk is not None or _risk_open(mind, plan.patient_id),
        resources=_resources(mind),
    )


def _turn_out(mind: TheraMind, result: TurnResult) -> TurnOut:
    record = result.record
    return TurnOut(
        reply=result.reply,
        closing=result.closing,
        risk_open=record.crisis or _risk_open(mind, record.patient_id),
        resources=_resources(mind),
        record=record,
    )


def create_app(
    mind: TheraMind, options: ServeOptions | None = None, runs_dir: Path | None = None
) -> FastAPI:
    """Build the HTTP app over one `TheraMind`.

    Args:
        mind: The counselor every request goes to.
        options: Token, CORS origins and body limit (the bind address is checked by `serve`).
        runs_dir: The folder whose run directories the run viewer lists (default `./runs`).
    """
    options = options or ServeOptions()
    root = (runs_dir or Path("runs")).resolve()
    registry = Registry(mind)
    app = FastAPI(
        title="TheraMind",
        summary="Longitudinal counseling sessions with LLM agents, over HTTP.",
        version="0.1.0",
    )
    app.state.mind = mind
    app.state.registry = registry

    async def authorized(request: Request) -> None:
        if not token_matches(options.token, request.headers.get("authorization")):
            raise _Unauthorized

    @app.exception_handler(errors.TheraMindError)
    async def _typed(_: Request, exc: errors.TheraMindError) -> JSONResponse:
        return JSONResponse(error_body(exc), status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}"
        return JSONResponse({"error": "InputError", "message": message}, status_code=422)

    @app.exception_handler(_Unauthorized)
    async def _unauthorized(_: Request, __: Exception) -> JSONResponse:
        body = {"error": "Unauthorized", "message": "send 'Authorization: Bearer <API token>'"}
        return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})

    api = [Depends(authorized)]
    static = resources.files("theramind.web") / "static"

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def console() -> HTMLResponse:
        return HTMLResponse((static / "console.html").read_text(encoding="utf-8"))

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/api/health", dependencies=api, tags=["server"])
    async def health() -> dict[str, str]:
        """Say the server is up, and where its data lives."""
        return {"status": "ok", "home": str(mind.settings.home)}

    @app.get("/api/patients", dependencies=api, tags=["patients"])
    async def patients() -> list[str]:
        """List the patients' ids."""
        return await asyncio.to_thread(mind.services.store.patients)

    @app.post(
        "/api/patients/{patient_id}/sessions",
        dependencies=api,
        response_model=SessionOut,
        tags=["sessions"],
    )
    async def start(patient_id: str, body: StartRequest) -> SessionOut:
        """Start the patient's next session (registering the profile), or resume the open one."""
        async with registry.lock(patient_id):
            session = await registry.start(patient_id, body.profile)
            return await asyncio.to_thread(_session_out, mind, session)

    @app.post(
        "/api/patients/{patient_id}/sessions/{session_no}/messages",
        dependencies=api,
        response_model=TurnOut,
        tags=["sessions"],
    )
    async def message(patient_id: str, session_no: int, body: MessageRequest) -> TurnOut:
        """Send one message and get the whole reply with the turn's record."""
        async with registry.lock(patient_id):
            session = await registry.get(patient_id, session_no)
            result = await session.arespond(body.text)
            return await asyncio.to_thread(_turn_out, mind, result)

    @app.post(
        "/api/patients/{patient_id}/sessions/{session_no}/stream",
        dependencies=api,
        response_class=JSONResponse,
        responses={
            200: {"description": "Server-sent events", "content": {"text/event-stream": {}}}
        },
        tags=["sessions"],
    )
    async def stream(patient_id: str, session_no: int, body: MessageRequest) -> EventSourceResponse:
        """Send one message; the reply streams as `token` events, then one `turn` event.

        Errors found before the reply starts (bad message, closed session) are ordinary
        HTTP errors; a failure while streaming arrives as an `error` event.
        """
        lock = registry.lock(patient_id)
        await lock.acquire()
        try:
            session = await registry.get(patient_id, session_no)
            validate_message(body.text, mind.settings.limits.max_message_chars)
            status = await asyncio.to_thread(lambda: session.status)
            if status != "open":
                raise errors.SessionClosedError(
                    f"session {session_no} of {patient_id!r} is {status}; "
                    + ("end it" if status == "closing" else "start a new session")
                )
            turn = _StreamedTurn(session, body.text, lock)
        except BaseException:
            lock.release()
            raise
        return EventSourceResponse(_events(mind, turn))

    @app.post(
        "/api/patients/{patient_id}/sessions/{session_no}/end",
        dependencies=api,
        response_model=SessionOutcome,
        tags=["sessions"],
    )
    async def end(patient_id: str, session_no: int) -> SessionOutcome:
        """Close the session: efficacy, therapy decision, formulation, memory."""
        async with registry.lock(patient_id):
            session = await registry.get(patient_id, session_no)
            outcome = await session.aend()
            registry.forget(patient_id)
            return outcome

    @app.get("/api/patients/{patient_id}", dependencies=api, tags=["patients"])
    async def patient(patient_id: str) -> dict[str, Any]:
        """Return a patient's profile, sessions, therapy decisions, formulation and risks."""
        return await asyncio.to_thread(_patient_view, mind, patient_id)

    @app.get(
        "/api/patients/{patient_id}/sessions/{session_no}", dependencies=api, tags=["patients"]
    )
    async def session_view(patient_id: str, session_no: int) -> dict[str, Any]:
        """Return one session's plan, status and turns."""
        return await asyncio.to_thread(_session_view, mind, patient_id, session_no)

    @app.get("/api/patients/{patient_id}/export", dependencies=api, tags=["patients"])
    async def export(patient_id: str) -> dict[str, Any]:
        """Return everything stored about the patient, memories included."""
        return await asyncio.to_thread(mind.export_patient, patient_id)

    @app.delete("/api/patients/{patient_id}", dependencies=api, tags=["patients"])
    async def delete(patient_id: str) -> dict[str, str]:
        """Erase the patient: records, memories and checkpoints."""
        async with registry.lock(patient_id):
            mind.services.store.patient(patient_id)  # 404 for an unknown patient
            await asyncio.to_thread(mind.delete_patient, patient_id)
            registry.forget(patient_id)
        return {"deleted": patient_id}

    runs.add_routes(app, root, api)
    if options.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=options.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(_BodyLimitMiddleware, limit=options.max_body_bytes)
    return app


class _Unauthorized(Exception):
    pass


class _BodyLimitMiddleware(BodyLimit):
    """`BodyLimit` under the keyword signature `add_middleware` calls it with."""

    def __init__(self, app: Any, limit: int) -> None:
        super().__init__(app, limit)


def _event(name: str, data: Any) -> bytes:
    return format_sse_event(event=name, data_str=json.dumps(data, ensure_ascii=False))


class _StreamedTurn:
    """One turn running in a worker thread, its reply chunks queued for the event stream.

    The turn starts as soon as this is built and releases the patient's lock when it has been
    stored, whether or not anyone reads the stream: a client that disconnects does not cut a
    turn short, and turns of one patient never overlap.
    """

    def __init__(self, session: Session, text: str, lock: asyncio.Lock) -> None:
        self.session = session
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.task = self.loop.run_in_executor(None, self._pump, text)
        self.task.add_done_callback(lambda _: lock.release())

    def _pump(self, text: str) -> None:
        try:
            for chunk in self.session.stream(text):
                self.loop.call_soon_threadsafe(self.queue.put_nowait, chunk)
        finally:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, None)


async def _events(mind: TheraMind, turn: _StreamedTurn) -> AsyncIterator[bytes]:
    """Yield a streamed turn as server-sent events: `token`s, then `turn` (or `error`)."""
    try:
        while (chunk := await turn.queue.get()) is not None:
            yield _event("token", chunk)
        await turn.task
        last = turn.session.last
        if last is None:  # pragma: no cover - stream always sets it
            raise errors.SessionStateError("the turn ended without a record")
        out = await asyncio.to_thread(_turn_out, mind, last)
        yield _event("turn", out.model_dump(mode="json"))
    except errors.TheraMindError as exc:
        yield _event("error", error_body(exc))


def _patient_view(mind: TheraMind, patient_id: str) -> dict[str, Any]:
    store = mind.services.store
    profile = store.patient(patient_id)
    outcomes = store.outcomes(patient_id)
    unfinished = store.open_session(patient_id)
    return {
        "profile": profile.model_dump(mode="json"),
        "sessions": [
            {
                "session_no": o.session_no,
                "decision": o.decision.model_dump(mode="json"),
                "efficacy": o.efficacy.model_dump(mode="json"),
                "summary": o.summary.summary,
                "previous_therapies": o.previous_therapies,
                "fallbacks": o.fallbacks,
            }
            for o in outcomes
        ],
        "open_session": unfinished[0] if unfinished else None,
        "formulation": outcomes[-1].formulation.model_dump(mode="json") if outcomes else None,
        "risk_events": [r.model_dump(mode="json") for r in store.risk_events(patient_id)],
        "risk_open": _risk_open(mind, patient_id),
    }


def _session_view(mind: TheraMind, patient_id: str, session_no: int) -> dict[str, Any]:
    store = mind.services.store
    store.patient(patient_id)
    plan = store.plan(patient_id, session_no)
    return {
        "plan": plan.model_dump(mode="json"),
        "status": store.session_status(patient_id, session_no),
        "turns": [t.model_dump(mode="json") for t in store.turns(patient_id, session_no)],
    }
