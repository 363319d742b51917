"""The exchange's HTTP API: order entry for programs, control for operators (FastAPI).

Every route but ``/health`` needs a bearer token from ``POST /api/v1/login``
(the platform's accounts, argon2; failed logins slowed per name and logged)
or, for programs, an API key of an account (``X-API-Key`` or as the bearer).
A browser gets the token as an HttpOnly, SameSite=Strict cookie at login too
(a script on the page cannot read it, another site cannot send it), which is
how the OpenAPI docs at ``/docs`` and a screen's stream are opened.
A trader acts as its clearing member and only ever finds that member's
orders; a viewer reads the session state; an operator controls the market.
Prices are decimal strings at this edge (``"195.40"``) and integer units
inside; bodies are strict (``"qty": "1"`` or ``true`` is not a quantity).
Errors carry the matcher's reason codes; an invalid body is a 422 naming the
field. ``Idempotency-Key`` on a submit makes a retried request return the
first answer instead of entering a second order.

(No ``from __future__ import annotations`` here: FastAPI reads the route
signatures at runtime, and their dependencies are closures of ``create_app``.)
"""

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import Future
from typing import Annotated, Any, Literal

from fastapi import (
    Cookie,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Query,
    Request,
    Response,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from streaming.accounts import KEY_PREFIX, Account, Role
from streaming.events import Bar, BookTop, ControlAction, Trade
from streaming.gateways.gateway import Gateway
from streaming.gateways.order_entry import ClientOrder, EntryRejected, Update
from streaming.gateways.streams import CHANNELS, StreamEvent, Subscriber
from streaming.gateways.venue import Venue
from streaming.gateways.wire import format_avg_price as _decimal
from streaming.gateways.wire import format_price as _px
from streaming.gateways.wire import parse_price as _price

log = logging.getLogger("marketlake.gateway.http")
API = "/api/v1"
TOKEN_TTL_S = 3600
COOKIE = "marketlake_session"
ANSWER_TIMEOUT_S = 10.0  # a request the matcher has not answered by then is a 504


# -- bodies ------------------------------------------------------------------------------------
def _checked_price(value: str | None) -> str | None:
    _price(value)
    return value


Price = Annotated[str | None, AfterValidator(_checked_price)]
"""A decimal price string, checked where the body is read (the field is named in the error)."""


class Login(BaseModel, extra="forbid", strict=True):
    name: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class NewOrderBody(BaseModel, extra="forbid", strict=True):
    symbol: str = Field(min_length=1, max_length=16)
    side: Literal["buy", "sell"]
    qty: int = Field(gt=0, le=10**8)
    price: Price = Field(default=None, description="Limit price as a decimal string.")
    type: Literal["limit", "market"] = "limit"
    tif: Literal["day", "ioc", "fok"] = "day"
    cl_ord_id: str | None = Field(default=None, min_length=1, max_length=64)


class AmendBody(BaseModel, extra="forbid", strict=True):
    qty: int = Field(gt=0, le=10**8)
    price: Price = None
    cl_ord_id: str | None = Field(default=None, min_length=1, max_length=64)


class ControlBody(BaseModel, extra="forbid", strict=True):
    action: Literal["open", "suspend", "resume", "close", "halt", "kill", "reference"]
    reason: str = Field(min_length=1, max_length=500)
    symbol: str | None = Field(default=None, max_length=16)
    member: str | None = Field(default=None, max_length=16)
    reference_price: Price = None
    band_pct: float | None = Field(default=None, gt=0, le=100)


# -- views -------------------------------------------------------------------------------------
def order_view(o: ClientOrder) -> dict[str, Any]:
    return {
        "cl_ord_id": o.cl_ord_id, "cl_ord_ids": list(o.cl_ord_ids), "order_id": o.order_id,
        "symbol": o.symbol, "side": o.side, "type": o.order_type, "tif": o.tif, "qty": o.qty,
        "price": None if o.price is None else _px(o.price), "status": o.status,
        "cum_qty": o.cum_qty, "leaves_qty": o.leaves_qty,
        "avg_px": _decimal(o.notional, o.cum_qty) if o.cum_qty else None,
        "reason": o.reason,
    }  # fmt: skip


# -- the app -----------------------------------------------------------------------------------
def book_view(symbol: str, top: BookTop | None) -> dict[str, Any]:
    if top is None:
        return {"symbol": symbol, "ts": None, "bids": [], "asks": []}
    return {"symbol": symbol, "ts": top.ts, "bids": [[_px(p), q] for p, q in top.bids],
            "asks": [[_px(p), q] for p, q in top.asks]}  # fmt: skip


def trade_view(t: Trade) -> dict[str, Any]:
    return {"trade_id": t.trade_id, "ts": t.ts, "price": _px(t.price), "qty": t.qty,
            "aggressor": t.aggressor_side}  # fmt: skip


def bar_view(b: Bar) -> dict[str, Any]:
    return {"start": b.start, "end": b.end, "open": _px(b.open), "high": _px(b.high),
            "low": _px(b.low), "close": _px(b.close), "volume": b.volume,
            "vwap": _decimal(round(b.vwap * 1_000), 1_000), "trades": b.trades}  # fmt: skip


def update_view(update: Update) -> dict[str, Any]:
    """One report of a member's order as its owner sees it."""
    er = update.report
    view = {"cl_ord_id": update.cl_ord_id, "exec_type": er.exec_type, "ts": er.ts,
            "order": order_view(update.order), "reason": er.reason,
            "refused": update.refused is not None}  # fmt: skip
    if er.exec_type == "trade":
        view |= {"last_qty": er.last_qty, "last_px": _px(er.last_price or 0)}
    return view


def stream_view(ev: StreamEvent) -> dict[str, Any]:
    data: Any = ev.data
    if ev.channel == "bbo":
        data = book_view(data.symbol, data)
    elif ev.channel == "trades":
        data = trade_view(data)
    elif ev.channel.startswith("bars."):
        data = bar_view(data)
    elif ev.channel == "orders":
        data = update_view(data)
    return {"seq": ev.seq, "channel": ev.channel, "symbol": ev.symbol, "data": data}


def stream_text(ev: StreamEvent) -> str:
    """The event as JSON, encoded once however many readers it goes to."""
    text = ev.wire.get("json")
    if text is None:
        text = ev.wire["json"] = json.dumps(stream_view(ev), separators=(",", ":"))
    return text


class StreamRequest(BaseModel, extra="forbid", strict=True):
    """The first message on the stream: what to follow, and where to resume."""

    symbols: list[str] = Field(default_factory=list, max_length=100)
    channels: list[str] = Field(min_length=1, max_length=20)
    since: int | None = Field(default=None, ge=0)
    epoch: int | None = Field(default=None, description="the epoch ``since`` is from")
    conflate_ms: int = Field(
        default=0, ge=0, le=10_000,
        description="deliver at most every this many ms, book tops conflated per symbol "
        "(a screen: 100); 0 = every event as it happens",
    )  # fmt: skip


def create_app(gateway: Gateway, clock: Callable[[], int] | None = None) -> FastAPI:
    app = FastAPI(
        title="marketlake exchange API",
        version="1",
        description="Order entry and market control for the marketlake exchange.",
        docs_url=None,  # served below, behind a login like everything else
        openapi_url=None,
    )
    bearer = HTTPBearer(auto_error=False)
    # the dependencies below are coroutines: none blocks (a kept SQLite read at most), and a
    # plain function would cost each request a trip through the thread pool per dependency

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        """A body that is not the model: 422, each error naming its field."""
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in exc.errors()]  # fmt: skip
        return JSONResponse({"reason": "invalid_body", "detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Every error body has a reason code (ours, or one for the status) and a detail."""
        detail = exc.detail
        if isinstance(detail, dict) and "reason" in detail:
            body = detail
        else:
            reason = {400: "invalid_json", 401: "unauthorized", 403: "forbidden",
                      404: "not_found", 405: "method_not_allowed",
                      429: "too_many_logins"}.get(exc.status_code, "error")  # fmt: skip
            body = {"reason": reason, "detail": detail}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    def token_account(token: str | None) -> Account | None:
        """A login token's account, or an API key's (``mlk_...``), or None."""
        if token and token.startswith(KEY_PREFIX):
            return gateway.accounts.authenticate_key(token)
        session = gateway.codec.verify(token) if token else None
        found = gateway.accounts.lookup(session.name) if session is not None else None
        if session is None or found is None or found[1] != session.stamp:
            return None
        return found[0]

    async def account(
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        x_api_key: Annotated[str | None, Header(max_length=128)] = None,
        marketlake_session: Annotated[str | None, Cookie(max_length=1024)] = None,
    ) -> Account:
        token = creds.credentials if creds is not None else x_api_key or marketlake_session
        acct = (await run_in_threadpool(token_account, token)  # a key's file may be written
                if token and token.startswith(KEY_PREFIX) else token_account(token))  # fmt: skip
        if acct is None:
            raise HTTPException(401, "a valid bearer token (POST /api/v1/login) or API key is "
                                "needed",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        return acct

    async def trader(acct: Annotated[Account, Depends(account)]) -> tuple[Account, str]:
        if acct.role != Role.TRADER or not acct.member:
            raise HTTPException(403, "only a trader account with a clearing member trades")
        return acct, acct.member

    async def operator(acct: Annotated[Account, Depends(account)]) -> Account:
        if acct.role != Role.OPERATOR:
            raise HTTPException(403, "market control is for operators")
        return acct

    async def venue() -> Venue:
        if gateway.venue is None:
            raise HTTPException(503, {"reason": "no_session", "detail": "no trading day is open"})
        return gateway.venue

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, Any]:
        return {"status": "ok", "day": gateway.venue.day if gateway.venue else None}

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(acct: Annotated[Account, Depends(account)]) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs(acct: Annotated[Account, Depends(account)]) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title}: docs")

    @app.post(f"{API}/logout")
    def logout(response: Response) -> dict[str, Any]:
        """Forget the browser's login cookie (a bearer token stays valid until it expires)."""
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return {"status": "logged_out"}

    @app.post(f"{API}/login")
    async def login(body: Login, request: Request, response: Response) -> dict[str, Any]:
        """A bearer token for the account (one hour), also set as the browser's cookie."""
        wait = gateway.throttle.wait_s(body.name)
        if wait > 0:
            raise HTTPException(429, f"too many failed logins: try again in {wait:.0f} s",
                                headers={"Retry-After": str(int(wait) + 1)})  # fmt: skip
        acct = await run_in_threadpool(gateway.accounts.authenticate, body.name, body.password)
        found = gateway.accounts.lookup(body.name) if acct is not None else None
        if acct is None or found is None:
            gateway.throttle.failed(body.name)
            client = request.client.host if request.client else "?"
            log.warning("failed login for %r from %s", body.name[:64], client)
            raise HTTPException(401, "wrong name or password")
        gateway.throttle.succeeded(body.name)
        token = gateway.codec.issue(acct.name, found[1])
        response.set_cookie(COOKIE, token, max_age=TOKEN_TTL_S, path="/", httponly=True,
                            samesite="strict")  # fmt: skip
        return {"token": token, "token_type": "bearer",
                "expires_in": TOKEN_TTL_S, "role": acct.role.value, "member": acct.member}  # fmt: skip

    @app.get(f"{API}/session")
    def session(acct: Annotated[Account, Depends(account)]) -> dict[str, Any]:
        """The trading day, the exchange time and each symbol's session state."""
        v = gateway.venue
        if v is None:
            return {"day": None, "status": {}}
        return {"day": v.day, "time_ns": v.clock(), "status": dict(v.market.status)}

    @app.get(f"{API}/securities")
    def securities(
        acct: Annotated[Account, Depends(account)], v: Annotated[Venue, Depends(venue)]
    ) -> list[dict[str, Any]]:
        """Reference data: what trades here, its tick and lot, its reference price."""
        return [
            {"symbol": s.symbol, "name": s.name, "sector": s.sector, "currency": s.currency,
             "tick": _px(s.tick), "lot": s.lot, "reference_price": _px(s.reference_price)}
            for s in v.securities.values()
        ]  # fmt: skip

    async def listed(symbol: str, v: Annotated[Venue, Depends(venue)]) -> str:
        if symbol not in v.securities:
            raise HTTPException(404, {"reason": "unknown_symbol", "detail": symbol})
        return symbol

    @app.get(f"{API}/market/{{symbol}}/book")
    def book(
        symbol: Annotated[str, Depends(listed)],
        acct: Annotated[Account, Depends(account)],
        v: Annotated[Venue, Depends(venue)],
    ) -> dict[str, Any]:
        """The book's top levels as the matcher last published them."""
        return book_view(symbol, v.top(symbol))

    @app.get(f"{API}/market/{{symbol}}/trades")
    def trades(
        symbol: Annotated[str, Depends(listed)],
        acct: Annotated[Account, Depends(account)],
        v: Annotated[Venue, Depends(venue)],
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """The latest trades, newest last (who traded is not shown)."""
        tape = v.recent_trades(symbol, limit)
        return [trade_view(t) for t in tape]

    @app.get(f"{API}/market/{{symbol}}/bars")
    def bars(
        symbol: Annotated[str, Depends(listed)],
        acct: Annotated[Account, Depends(account)],
        v: Annotated[Venue, Depends(venue)],
        interval: Literal["1s", "1m", "3m", "5m", "15m"] = "1m",
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[dict[str, Any]]:
        """The latest closed bars of one interval, oldest first."""
        return [bar_view(b) for b in v.recent_bars(symbol, interval, limit)]

    @app.get(f"{API}/account")
    def account_view(
        who: Annotated[tuple[Account, str], Depends(trader)],
        v: Annotated[Venue, Depends(venue)],
    ) -> dict[str, Any]:
        """The member's day: the previous close plus its fills (cash, positions), P&L marked to
        the last trade (the reference price before one)."""
        acct, marks = v.account(who[1]), v.marks()
        positions = [
            {"symbol": sym, "qty": p.qty, "avg_cost": _decimal(p.cost, p.qty) if p.qty else None,
             "mark": _px(marks.get(sym, 0)),
             "unrealized": _px(p.qty * marks.get(sym, 0) - p.cost)}
            for sym, p in sorted(acct.positions.items()) if p.qty
        ]  # fmt: skip
        return {"member": who[1], "cash": _px(acct.cash), "realized": _px(acct.realized),
                "unrealized": _px(acct.unrealized(marks)),
                "net_worth": _px(acct.net_worth(marks)), "fills": acct.fills,
                "positions": positions}  # fmt: skip

    in_flight: dict[tuple[str, str, str], asyncio.Future[None]] = {}  # idempotency keys

    @app.post(f"{API}/orders", status_code=201)
    async def submit(
        body: NewOrderBody,
        who: Annotated[tuple[Account, str], Depends(trader)],
        v: Annotated[Venue, Depends(venue)],
        idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
    ) -> JSONResponse:
        """Enter an order; the answer is the matcher's first report (ack, fill or reject)."""
        member = who[1]
        key = (v.day, member, idempotency_key) if idempotency_key else None
        if key is not None:
            # a retry racing its original (a client that timed out and sent again) waits
            # for it and gets its answer: one key, one order, however the requests interleave
            while (under_way := in_flight.get(key)) is not None:
                await asyncio.shield(under_way)
            done = gateway.answered(key)
            if done is not None:
                return JSONResponse(
                    done[1], status_code=done[0], headers={"Idempotent-Replay": "1"}
                )
            in_flight[key] = asyncio.get_running_loop().create_future()
        try:
            cl = body.cl_ord_id or f"api-{secrets.token_hex(8)}"
            if body.type == "limit" and body.price is None:
                raise HTTPException(422, {"reason": "missing_price", "field": "price"})
            status, answer = await _call(v, v.submit, member, cl, body.symbol, body.side,
                                         body.qty, _price(body.price), body.type, body.tif,
                                         created=True)  # fmt: skip
            if key is not None:
                gateway.remember(key, status, answer)
            return _json((status, answer))
        finally:
            if key is not None:
                in_flight.pop(key).set_result(None)

    @app.get(f"{API}/orders")
    def orders(
        who: Annotated[tuple[Account, str], Depends(trader)],
        v: Annotated[Venue, Depends(venue)],
        open_only: bool = False,
    ) -> list[dict[str, Any]]:
        """The member's orders of the day (``open_only``: those still working)."""
        return [order_view(o) for o in v.orders(who[1], open_only)]

    @app.get(f"{API}/orders/{{cl_ord_id}}")
    def order(
        cl_ord_id: str,
        who: Annotated[tuple[Account, str], Depends(trader)],
        v: Annotated[Venue, Depends(venue)],
    ) -> dict[str, Any]:
        try:
            return order_view(v.order(who[1], cl_ord_id))
        except EntryRejected as exc:
            raise HTTPException(404, {"reason": exc.reason, "detail": str(exc)}) from None

    @app.delete(f"{API}/orders/{{cl_ord_id}}")
    async def cancel(
        cl_ord_id: str,
        who: Annotated[tuple[Account, str], Depends(trader)],
        v: Annotated[Venue, Depends(venue)],
    ) -> JSONResponse:
        """Cancel what is left of the order (any id of its replace chain names it)."""
        return _json(await _call(v, v.cancel, who[1], f"api-{secrets.token_hex(8)}", cl_ord_id))

    @app.patch(f"{API}/orders/{{cl_ord_id}}")
    async def amend(
        cl_ord_id: str,
        body: AmendBody,
        who: Annotated[tuple[Account, str], Depends(trader)],
        v: Annotated[Venue, Depends(venue)],
    ) -> JSONResponse:
        """Replace the total quantity and/or the price (FIX OrderQty semantics)."""
        cl = body.cl_ord_id or f"api-{secrets.token_hex(8)}"
        return _json(await _call(v, v.amend, who[1], cl, cl_ord_id, body.qty, _price(body.price)))

    @app.websocket(f"{API}/stream")
    async def stream(ws: WebSocket) -> None:
        """Live events: ``bbo`` (conflated per symbol), ``trades``, ``bars.1m`` (any interval),
        ``session``, and (traders) ``orders``: the member's own order updates.

        The token comes as ``Authorization: Bearer`` or, for browsers, ``?token=``. The
        first message says what to follow: ``{"symbols": [...], "channels": [...],
        "since": N, "epoch": E}``; every event carries its sequence number, and ``since``
        (the last one seen, with the ``epoch`` of the answer it came in) resumes after a
        reconnect without a duplicate, or says from where it cannot (``gap_from``). A reader
        that falls too far behind gets ``{"type": "dropped", "reason": "slow_consumer"}`` and
        may resume. ``"conflate_ms": 100`` paces the stream (a screen): every 100 ms one
        message, a JSON array of the events since the last (book tops conflated per symbol),
        the first with each followed symbol's top.
        """
        header = ws.headers.get("authorization", "")
        token = (header[7:] if header.lower().startswith("bearer ")
                 else ws.headers.get("x-api-key") or ws.query_params.get("token"))  # fmt: skip
        if token is None and _same_origin(ws):  # a browser's login cookie, from our own page
            token = ws.cookies.get(COOKIE)
        acct = await run_in_threadpool(token_account, token)
        if acct is None:
            await ws.close(code=1008, reason="a valid token is needed")
            return
        await ws.accept()
        try:
            raw = await asyncio.wait_for(ws.receive_text(), timeout=30)
            req = StreamRequest.model_validate_json(raw)
        except (TimeoutError, ValidationError, WebSocketDisconnect) as exc:
            detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            with contextlib.suppress(Exception):
                await ws.send_json({"type": "error", "reason": "invalid_subscription",
                                    "detail": detail})  # fmt: skip
                await ws.close(code=1008)
            return
        v = gateway.venue
        unknown = sorted(set(req.channels) - CHANNELS)
        refusal = ("no_session" if v is None else f"unknown channel {unknown}" if unknown
                   else "orders are a trader's own" if "orders" in req.channels
                   and acct.role != Role.TRADER else None)  # fmt: skip
        if refusal is not None or v is None:
            await ws.send_json({"type": "error", "reason": refusal})
            await ws.close(code=1008)
            return
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        sub = Subscriber(acct.member if acct.role == Role.TRADER else None,
                         frozenset(req.symbols), frozenset(req.channels),
                         wake=lambda: loop.call_soon_threadsafe(wake.set),
                         paced=req.conflate_ms > 0)  # fmt: skip
        gap = v.stream.subscribe(sub, req.since, req.epoch)
        await ws.send_json({"type": "subscribed", "day": v.day, "seq": v.stream.seq,
                            "epoch": v.stream.epoch, "gap_from": gap})  # fmt: skip
        closed = asyncio.ensure_future(_until_closed(ws))
        try:
            pace = req.conflate_ms / 1000
            while not closed.done():
                if pace:  # a paced reader looks when its interval comes round (tops, then
                    # whatever else queued), or earlier only if the day closes
                    await asyncio.wait({closed}, timeout=pace)
                else:
                    waiter = asyncio.ensure_future(wake.wait())
                    await asyncio.wait({waiter, closed}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                wake.clear()
                if sub.overflowed:
                    await ws.send_json(
                        {
                            "type": "dropped",
                            "reason": "slow_consumer",
                            "detail": "resume with since = the last seq seen",
                        }
                    )
                    break
                events = v.stream.take(sub)
                if pace and events:  # one message per interval: a JSON array of events
                    await ws.send_text(f"[{','.join(stream_text(ev) for ev in events)}]")
                for ev in () if pace else events:
                    await ws.send_text(stream_text(ev))
                if sub.closed:
                    await ws.send_json({"type": "end_of_day", "day": v.day})
                    break
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            v.stream.unsubscribe(sub)
            closed.cancel()
            with contextlib.suppress(Exception):
                await ws.close()

    @app.post(f"{API}/control", status_code=202)
    def control(
        body: ControlBody,
        acct: Annotated[Account, Depends(operator)],
        v: Annotated[Venue, Depends(venue)],
    ) -> dict[str, Any]:
        """Act on the market; the action is on the log with who did it and why (audited)."""
        if body.action in ("halt", "reference") and not body.symbol:
            raise HTTPException(422, {"reason": "missing_symbol", "field": "symbol"})
        if body.action == "kill" and not body.member:
            raise HTTPException(422, {"reason": "missing_member", "field": "member"})
        if body.action == "reference" and body.reference_price is None:
            raise HTTPException(422, {"reason": "missing_price", "field": "reference_price"})
        if body.symbol is not None and body.symbol not in v.symbols:
            raise HTTPException(422, {"reason": "unknown_symbol", "field": "symbol"})
        action: ControlAction = body.action
        ctl = v.control(action, acct.name, body.reason, body.symbol, body.member,
                        _price(body.reference_price), body.band_pct)  # fmt: skip
        log.info("control %s by %s: %s", ctl.action, acct.name, ctl.reason)
        return {"action": ctl.action, "ts": ctl.ts, "actor": ctl.actor, "symbol": ctl.symbol,
                "member": ctl.member}  # fmt: skip

    return app


def _json(answer: tuple[int, dict[str, Any]]) -> JSONResponse:
    return JSONResponse(answer[1], status_code=answer[0])


_ENTRY_STATUS = {"unknown_order": 404, "insufficient_position": 422, "insufficient_cash": 422}
"""The gateway's refusals: an unknown id is not found, the pre-trade check refuses the
content like the matcher does (422), the rest conflicts with the member's orders (409)."""


def _same_origin(ws: WebSocket) -> bool:
    """Browsers send cookies with a WebSocket opened by any site: only our own pages' count."""
    origin = ws.headers.get("origin")
    return origin is None or origin.split("://", 1)[-1] == ws.headers.get("host")


async def _until_closed(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends until it goes away."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await ws.receive_text()


async def _call(
    v: Venue,
    fn: Callable[..., Future[Update] | None],
    member: str,
    cl_ord_id: str,
    *args: Any,
    created: bool = False,
) -> tuple[int, dict[str, Any]]:
    """Enter a request (journaled and queued at once) and await the matcher's answer without
    holding a thread: (status, body). Gateway refusals are 4xx with their reason, the
    matcher's refusals 422 with its reason code."""
    try:
        answer = fn(member, cl_ord_id, *args)
        assert answer is not None  # the API waits for its answers
        update = await asyncio.wait_for(asyncio.wrap_future(answer), ANSWER_TIMEOUT_S)
    except EntryRejected as exc:
        return _ENTRY_STATUS.get(exc.reason, 409), {"reason": exc.reason, "detail": str(exc)}
    except TimeoutError:
        v.forget(member, cl_ord_id)
        return 504, {"reason": "no_answer", "detail": f"no answer to {cl_ord_id!r} in "
                     f"{ANSWER_TIMEOUT_S:.0f} s: the matcher is not running on {v.day}'s log"}  # fmt: skip
    body = {"order": order_view(update.order), "exec_type": update.report.exec_type,
            "cl_ord_id": update.cl_ord_id}  # fmt: skip
    if update.report.exec_type == "rejected":
        return 422, {"reason": update.report.reason, **body}
    return (201 if created else 200), body
