"""The one way `abstract.neural` puts hooks on a model: a set that is emptied when its block ends.

Why: a hook left behind by a forward that raised (a bad intervention, an out-of-range
position, Ctrl-C) silently changes every later run of the same model object -- the next
hypothesis, the next test. Every ``register_forward_hook`` / ``register_forward_pre_hook`` in
this package goes through :class:`Hooks`, whose ``__exit__`` removes them whatever happened::

    with Hooks() as hooks:
        hooks.forward(block, record)
        model(**inputs)          # may raise: the hook is removed all the same
"""
from __future__ import annotations

from typing import Any, Callable

from torch import nn
from torch.utils.hooks import RemovableHandle

ForwardHook = Callable[..., Any]


class Hooks:
    """Forward and forward-pre hooks registered for one run; all removed on leaving ``with``."""

    def __init__(self) -> None:
        self._handles: list[RemovableHandle] = []

    def forward(self, module: nn.Module, fn: ForwardHook) -> RemovableHandle:
        """``fn(module, args, output)``; a non-None return replaces the output."""
        return self._keep(module.register_forward_hook(fn))

    def forward_pre(self, module: nn.Module, fn: ForwardHook, with_kwargs: bool = False) -> RemovableHandle:
        """``fn(module, args)`` (or ``fn(module, args, kwargs)`` with ``with_kwargs``); a
        non-None return replaces the arguments."""
        return self._keep(module.register_forward_pre_hook(fn, with_kwargs=with_kwargs))

    def _keep(self, handle: RemovableHandle) -> RemovableHandle:
        self._handles.append(handle)
        return handle

    def remove(self, handle: RemovableHandle) -> None:
        """Remove one hook early (the rest stay until the block ends)."""
        handle.remove()
        self._handles.remove(handle)

    def remove_all(self) -> None:
        while self._handles:
            self._handles.pop().remove()

    def __enter__(self) -> Hooks:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove_all()  # and let the exception, if any, propagate
