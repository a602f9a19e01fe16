"""A local Bybit v5 kline server (a real aiohttp.web app on 127.0.0.1, port 0) for the tests.

It serves generated candle histories with Bybit's semantics (newest first, every value a string,
``end`` inclusive, the newest ``limit`` candles of ``[start, end]``, the candle *containing* a
mid-interval ``start`` included, the still-open candle last), verbatim fixture bodies, and faults
injected on demand. It runs in a background thread with its own event loop, so both the sync
``fetch_klines`` and ``asyncio.run`` code can talk to it. Every request is logged.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
from aiohttp import web

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bybit"
STEP = {"1": 60_000, "3": 180_000, "5": 300_000, "15": 900_000, "30": 1_800_000, "60": 3_600_000,
        "120": 7_200_000, "240": 14_400_000, "360": 21_600_000, "720": 43_200_000,
        "D": 86_400_000, "W": 604_800_000}
HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>" \
           b"</center><hr><center>cloudfront</center></body></html>"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class History:
    """Candles of one category/symbol/interval: ``t`` ascending int64 ms, ``rows`` string lists."""

    def __init__(self, t: np.ndarray, values: np.ndarray):
        self.t = np.asarray(t, dtype=np.int64)
        self.values = values
        self.rows = [[str(int(a))] + [repr(float(x)) for x in row] for a, row in zip(self.t, values)]


def make_history(start_ms: int, n: int, step_ms: int, *, seed: int = 0, drop=()) -> History:
    """``n`` grid candles from ``start_ms``; ``drop`` = iterable of (i0, i1) index ranges left out."""
    rng = np.random.default_rng(seed)
    t = start_ms + step_ms * np.arange(n, dtype=np.int64)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    vol = rng.uniform(1, 100, n).round(4)
    values = np.column_stack([open_.round(2), high.round(2), low.round(2), close.round(2), vol,
                              (vol * close).round(4)])
    keep = np.ones(n, bool)
    for i0, i1 in drop:
        keep[i0:i1] = False
    return History(t[keep], values[keep])


class BybitServer:
    """Start with ``with BybitServer() as srv:``; ``srv.url`` is the base URL.

    Attributes
    ----------
    log : list of dict
        One entry per request: ``params`` (dict of str), ``t`` (monotonic seconds), ``status``.
    now_ms : int or None
        The server's "now": candles opening after it are not served (``None``: all).
    """

    def __init__(self):
        self.histories: dict[tuple[str, str, str], History] = {}
        self.verbatim: dict[tuple[str, str, str], bytes] = {}
        self.tickers: dict[str, list] = {}             # category -> result.list of /v5/market/tickers
        self.tickers_verbatim: dict[str, bytes] = {}   # category -> a whole reply body
        self.faults: deque = deque()
        self.log: list[dict] = []
        self.now_ms: int | None = None
        self.slow_seconds = 2.0
        self.fault_skip = 0  # normal answers to give before the queued faults start
        self.delay_seconds = 0.0  # every normal kline answer waits this long (to make requests overlap)
        self.in_flight = 0        # kline requests being answered now, and the most seen at once
        self.max_in_flight = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner = None
        self.url = ""

    # -- setup -------------------------------------------------------------------------------------
    def add(self, symbol: str, interval: str, history: History, category: str = "linear") -> History:
        self.histories[(category, symbol, interval)] = history
        return history

    def fault(self, kind: str, times: int = 1, **kw) -> None:
        """Queue ``times`` faults: ``10006`` (``reset_in_ms=`` adds X-Bapi-Limit-Reset-Timestamp),
        ``10016``, ``429``, ``502``, ``truncated``, ``slow``, ``403``, ``disconnect``, ``empty``,
        ``garbage_rows``, ``10001_symbol``, ``10001_period``."""
        for _ in range(times):
            self.faults.append((kind, kw))

    def windows(self) -> list[tuple[int, int]]:
        """``(start, end)`` ms of every logged kline request."""
        return [(int(e["params"]["start"]), int(e["params"]["end"])) for e in self.log if "start" in e["params"]]

    def set_tickers(self, category: str, turnover: dict, *, extra: list | None = None) -> None:
        """Serve ``/v5/market/tickers?category=...``: one entry per ``symbol -> turnover24h`` (in that
        order), every field Bybit's v5 documentation lists for the category, as strings; ``extra``
        entries (dicts) are appended verbatim."""
        rows = []
        for i, (sym, tv) in enumerate(turnover.items()):
            last = 100.0 + i
            common = {"symbol": sym, "lastPrice": f"{last:.2f}", "prevPrice24h": f"{last * 0.99:.2f}",
                      "price24hPcnt": "0.010101", "highPrice24h": f"{last * 1.02:.2f}",
                      "lowPrice24h": f"{last * 0.97:.2f}", "turnover24h": repr(float(tv)),
                      "volume24h": repr(float(tv) / last)}
            if category == "spot":
                rows.append({"symbol": sym, "bid1Price": f"{last - 0.01:.2f}", "bid1Size": "2",
                             "ask1Price": f"{last + 0.01:.2f}", "ask1Size": "1.5", **common,
                             "usdIndexPrice": f"{last:.2f}"})
            else:
                rows.append({**common, "indexPrice": f"{last:.2f}", "markPrice": f"{last:.2f}",
                             "prevPrice1h": f"{last:.2f}", "openInterest": "1000", "openInterestValue": "100000",
                             "fundingRate": "0.0001", "nextFundingTime": "1672387200000",
                             "predictedDeliveryPrice": "", "basisRate": "", "deliveryFeeRate": "",
                             "deliveryTime": "0", "ask1Size": "1", "bid1Price": f"{last - 0.5:.2f}",
                             "ask1Price": f"{last:.2f}", "bid1Size": "1"})
        self.tickers[category] = rows + list(extra or [])

    # -- lifecycle ----------------------------------------------------------------------------------
    def __enter__(self) -> "BybitServer":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/v5/market/kline", self._kline)
        app.router.add_get("/v5/market/tickers", self._tickers)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    # -- the endpoint -------------------------------------------------------------------------------
    async def _kline(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
            return await self._kline_answer(request)
        finally:
            self.in_flight -= 1

    async def _kline_answer(self, request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        entry = {"params": params, "t": time.monotonic(), "status": 200}
        self.log.append(entry)
        if self.faults and self.fault_skip > 0:
            self.fault_skip -= 1
        elif self.faults:
            kind, kw = self.faults.popleft()
            resp = await self._fault(request, kind, kw)
            if resp is not None:
                entry["status"] = resp.status
                entry["fault"] = kind
                return resp
        key = (params.get("category", "linear"), params.get("symbol", ""), params.get("interval", ""))
        if key in self.verbatim:
            return web.Response(body=self.verbatim[key], content_type="application/json")
        if key[2] not in STEP and key[2] != "M":
            return web.Response(body=fixture("error_v5_10001_invalid_period.json"), content_type="application/json")
        hist = self.histories.get(key)
        if hist is None:
            return web.Response(body=fixture("error_v5_10001_not_supported_symbols.json"),
                                content_type="application/json")
        step = STEP[key[2]]
        limit = min(1000, max(1, int(params.get("limit", 200))))
        end = int(params["end"]) if "end" in params else (self.now_ms or 2**62)
        if self.now_ms is not None:
            end = min(end, self.now_ms)
        lo = np.searchsorted(hist.t, int(params["start"]) - step, side="right") if "start" in params else 0
        hi = np.searchsorted(hist.t, end, side="right")
        lo = max(lo, hi - limit)
        entry["times"] = hist.t[lo:hi]  # what this answer carries (ascending)
        rows = hist.rows[lo:hi][::-1]
        body = {"retCode": 0, "retMsg": "OK",
                "result": {"category": key[0], "symbol": key[1], "list": rows},
                "retExtInfo": {}, "time": int(time.time() * 1000)}
        return web.Response(text=json.dumps(body, separators=(",", ":")), content_type="application/json")

    async def _tickers(self, request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        entry = {"params": params, "t": time.monotonic(), "status": 200, "path": "tickers"}
        self.log.append(entry)
        if self.faults:
            kind, kw = self.faults.popleft()
            resp = await self._fault(request, kind, kw)
            if resp is not None:
                entry["status"], entry["fault"] = resp.status, kind
                return resp
        category = params.get("category", "")
        if category in self.tickers_verbatim:
            return web.Response(body=self.tickers_verbatim[category], content_type="application/json")
        if category not in ("spot", "linear", "inverse", "option"):
            return web.json_response({"retCode": 10001, "retMsg": "Illegal category", "result": {},
                                      "retExtInfo": {}, "time": int(time.time() * 1000)})
        rows = self.tickers.get(category, [])
        if "symbol" in params:
            rows = [r for r in rows if r["symbol"] == params["symbol"]]
        body = {"retCode": 0, "retMsg": "OK", "result": {"category": category, "list": rows},
                "retExtInfo": {}, "time": int(time.time() * 1000)}
        return web.Response(text=json.dumps(body, separators=(",", ":")), content_type="application/json")

    async def _fault(self, request, kind, kw):
        if kind == "10006":
            headers = {}
            if "reset_in_ms" in kw:
                headers["X-Bapi-Limit-Reset-Timestamp"] = str(int(time.time() * 1000) + kw["reset_in_ms"])
            return web.Response(body=fixture("error_v5_10006_too_many_visits.json"), headers=headers,
                                content_type="application/json")
        if kind == "10016":
            return web.json_response({"retCode": 10016, "retMsg": "Internal server error.", "result": {},
                                      "retExtInfo": {}, "time": int(time.time() * 1000)})
        if kind == "429":
            return web.Response(status=429, text="Too Many Requests")
        if kind == "502":
            return web.Response(status=502, body=HTML_502, content_type="text/html")
        if kind == "403":
            return web.Response(status=403, text="<html><body>403 Forbidden</body></html>",
                                content_type="text/html")
        if kind == "10001_symbol":
            return web.Response(body=fixture("error_v5_10001_not_supported_symbols.json"),
                                content_type="application/json")
        if kind == "10001_period":
            return web.Response(body=fixture("error_v5_10001_invalid_period.json"),
                                content_type="application/json")
        if kind == "empty":
            return web.json_response({"retCode": 0, "retMsg": "OK", "result": {"list": []},
                                      "retExtInfo": {}, "time": 0})
        if kind == "garbage_rows":
            return web.json_response({"retCode": 0, "retMsg": "OK", "result": {"list": [["1", "x"]]},
                                      "retExtInfo": {}, "time": 0})
        if kind == "slow":
            await asyncio.sleep(kw.get("seconds", self.slow_seconds))
            return None
        if kind in ("truncated", "disconnect"):
            real = await self._kline_after_fault(request)
            body = real.body
            if kind == "truncated":
                return web.Response(body=body[: len(body) // 2], content_type="application/json")
            request.transport.close()  # connection reset before any answer
            return web.Response(status=599)
        raise ValueError(f"unknown fault {kind!r}")

    async def _kline_after_fault(self, request):
        saved, self.faults = self.faults, deque()
        try:
            resp = await self._kline_answer(request)
            self.log.pop()
            return resp
        finally:
            self.faults = saved
