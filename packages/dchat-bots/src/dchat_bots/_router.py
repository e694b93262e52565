"""Routers: handlers by update kind, with filters, middleware and error handlers.

Theory of operation. An update of kind K (``message``, ``callback_query``, ...)
walks the router tree depth first: a router tries its own handlers of kind K in
the order they were registered, then its child routers in the order they were
included; the first handler whose filters all pass takes the update, and the
walk ends. Nothing matching is not an error (the update is simply confirmed).

Middleware wraps the walk. A router's *outer* middleware runs for every update
that reaches the router, before any filter: it may add to ``ctx.data``, or
drop the update for this router's subtree by not calling ``call_next``. *Inner*
middleware runs only around a handler that was chosen, and a router's inner
middleware also wraps the handlers of its child routers (root first).

An exception from a handler (or its inner middleware) goes to the error
handlers of the handler's router, then of its parents up to the root; the
first whose exception types match handles it. An exception from a filter or
a middleware goes to the root's error handlers. An exception no error handler
takes, or one an error handler raises, reaches the dispatcher, which logs it
and goes on with the next update.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from ._filters import Command, FilterLike, _All, as_filter

if TYPE_CHECKING:
    from ._context import Context
    from ._filters import Filter
    from ._types import Update

__all__ = ("ErrorHandler", "Handler", "Middleware", "Router", "UnhandledError")

Handler: TypeAlias = Callable[[Any, "Context"], Awaitable[Any]]
"""``async def handler(event, ctx)``: the event is the update's Message, CallbackQuery, ..."""
Middleware: TypeAlias = Callable[[Handler, Any, "Context"], Awaitable[Any]]
"""``async def middleware(call_next, event, ctx)``: ``return await call_next(event, ctx)``."""
ErrorHandler: TypeAlias = Callable[[Exception, "Context"], Awaitable[Any]]
"""``async def on_error(error, ctx)``."""

H = TypeVar("H", bound=Handler)
KINDS = ("message", "edited_message", "callback_query", "inline_query")


class UnhandledError(Exception):
    """A handler's exception that no error handler took (the dispatcher logs it)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(type(error).__name__)
        self.error = error


class Router:
    """A group of handlers; include routers in others (and in the dispatcher) to compose a bot."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or f"router-{id(self):x}"
        self._handlers: dict[str, list[tuple[Filter, Handler]]] = {k: [] for k in KINDS}
        self._children: list[Router] = []
        self._parent: Router | None = None
        self._outer: list[Middleware] = []
        self._inner: list[Middleware] = []
        self._errors: list[tuple[tuple[type[Exception], ...], ErrorHandler]] = []

    def __repr__(self) -> str:
        return f"Router({self.name!r})"

    # -- registration --------------------------------------------------------------------

    def handler(self, kind: str, *filters: FilterLike) -> Callable[[H], H]:
        """Register ``async def f(event, ctx)`` for updates of ``kind`` passing ``filters``."""
        if kind not in KINDS:
            raise ValueError(f"unknown update kind {kind!r}; one of {KINDS}")
        check = _All(tuple(as_filter(f) for f in filters))

        def register(function: H) -> H:
            self._handlers[kind].append((check, function))
            return function

        return register

    def message(self, *filters: FilterLike) -> Callable[[H], H]:
        """Handler of new messages: ``@router.message(Text())``."""
        return self.handler("message", *filters)

    def edited_message(self, *filters: FilterLike) -> Callable[[H], H]:
        return self.handler("edited_message", *filters)

    def callback_query(self, *filters: FilterLike) -> Callable[[H], H]:
        """Handler of button presses: ``@router.callback_query(Text(startswith="vote:"))``."""
        return self.handler("callback_query", *filters)

    def inline_query(self, *filters: FilterLike) -> Callable[[H], H]:
        return self.handler("inline_query", *filters)

    def command(self, *names: str, filters: tuple[FilterLike, ...] = ()) -> Callable[[H], H]:
        """Handler of the commands ``names`` (``ctx.command`` holds the arguments)."""
        return self.message(Command(*names), *filters)

    def error(self, *types: type[Exception]) -> Callable[[H], H]:
        """Error handler ``async def f(error, ctx)`` for ``types`` (default: every Exception)."""

        def register(function: H) -> H:
            self._errors.append((types or (Exception,), function))
            return function

        return register

    def outer_middleware(self, middleware: Middleware) -> Middleware:
        """Add middleware around everything this router does with an update (a decorator too)."""
        self._outer.append(middleware)
        return middleware

    def middleware(self, middleware: Middleware) -> Middleware:
        """Add inner middleware around the chosen handler (a decorator too)."""
        self._inner.append(middleware)
        return middleware

    def include_router(self, router: Router) -> Router:
        """Make ``router`` a child of this one (a router has one parent)."""
        if router._parent is not None or router is self:
            raise ValueError(f"{router!r} is already included in {router._parent!r}")
        node: Router | None = self
        while node is not None:
            if node is router:
                raise ValueError("including this router would make a loop")
            node = node._parent
        router._parent = self
        self._children.append(router)
        return router

    # -- routing --------------------------------------------------------------------------

    async def _route(
        self, update: Update, kind: str, event: Any, ctx: Context, inner: tuple[Middleware, ...]
    ) -> bool:
        """Offer ``event`` to this subtree; answers whether a handler took it."""

        async def walk(event: Any, ctx: Context) -> bool:
            chain = inner + tuple(self._inner)
            for check, function in self._handlers[kind]:
                verdict = await check.check(event, ctx)
                if verdict is not False:
                    if isinstance(verdict, dict):
                        ctx.data.update(verdict)
                    await self._run(function, chain, event, ctx)
                    return True
            for child in self._children:
                if await child._route(update, kind, event, ctx, chain):
                    return True
            return False

        return bool(await _wrap(walk, self._outer)(event, ctx))

    async def _run(
        self, function: Handler, chain: tuple[Middleware, ...], event: Any, ctx: Context
    ) -> None:
        try:
            await _wrap(function, chain)(event, ctx)
        except Exception as error:  # the bot's own code: offered to its error handlers
            if not await self._offer(error, ctx):
                raise UnhandledError(error) from error

    async def _offer(self, error: Exception, ctx: Context) -> bool:
        """Give ``error`` to the first matching error handler, here or up the tree.

        An error handler's own exception is not offered again: it is raised as
        :class:`UnhandledError` (the dispatcher logs it).
        """
        router: Router | None = self
        while router is not None:
            for types, on_error in router._errors:
                if isinstance(error, types):
                    try:
                        await on_error(error, ctx)
                    except Exception as again:
                        raise UnhandledError(again) from again
                    return True
            router = router._parent
        return False


def _wrap(function: Handler, chain: tuple[Middleware, ...] | list[Middleware]) -> Handler:
    """``function`` inside ``chain`` (the first middleware outermost)."""
    for middleware in reversed(chain):
        function = _bind(middleware, function)
    return function


def _bind(middleware: Middleware, call_next: Handler) -> Handler:
    async def step(event: Any, ctx: Context) -> Any:
        return await middleware(call_next, event, ctx)

    return step
