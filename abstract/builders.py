"""Helpers for torch builders: a word-level tokenizer, seeding, and a weight cache.

Why: every builder that trains its own network used to copy the same hundred lines -- a
cache folder keyed by its options, an atomic write, ``save_pretrained``, a fixed seed and one
thread, a ``tokenizers`` WordLevel model wrapped for transformers. These are those lines once
(docs/networks.md, "Helpers for builders").

* :func:`word_tokenizer`: a real ``PreTrainedTokenizerFast`` over a word list
  (whitespace-split, special tokens first), saved and reloaded like any HF tokenizer.
* :func:`seeded`: a block with a fixed torch seed and one CPU thread (small matmuls are
  fastest and bitwise reproducible on one thread); the caller's RNG state and thread count
  are restored after it.
* :func:`cached_build`: a decorator that keys a builder's result by its options (defaults
  applied) and the source of the file that defines it, and stores it under
  ``$ABSTRACT_CACHE_DIR/models/`` (default ``.abstract-cache/``): a Hugging Face
  ``(model, tokenizer)`` with ``save_pretrained`` (the result is always what
  ``from_pretrained`` loads from that folder, so a cached and a fresh build are the same
  network), a plain ``nn.Module`` as a safetensors file of its ``state_dict`` (rebuilt by the
  ``skeleton`` function, then loaded). The decorated builder takes ``cache=False`` to build
  without the cache.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

__all__ = ["word_tokenizer", "seeded", "cached_build", "cache_root", "build_key"]

SPECIALS = ("[PAD]", "[UNK]", "[EOS]")


def word_tokenizer(words: Sequence[str], specials: Sequence[str] = SPECIALS, *, pad: str = "[PAD]",
                   unk: str = "[UNK]", eos: str = "[EOS]", bos: Optional[str] = None,
                   punctuation: bool = False) -> Any:
    """A word-level ``PreTrainedTokenizerFast``: ids ``0..`` for ``specials`` then ``words`` (in
    order, duplicates once); text is split on whitespace (``punctuation``: also into word runs
    and punctuation runs, ``tokenizers``' ``Whitespace``, so ``"store,"`` is ``store`` ``,``);
    an unknown word is ``unk``. ``bos`` defaults to ``eos`` (GPT-2's convention)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    vocab: dict[str, int] = {}
    for w in [*specials, *words]:
        vocab.setdefault(w, len(vocab))
    missing = [t for t in (pad, unk, eos) if t not in vocab]
    if missing:
        raise ValueError(f"special tokens {missing} are not in the vocabulary (specials={list(specials)})")
    tok = Tokenizer(models.WordLevel(vocab, unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.Whitespace() if punctuation else pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=unk, pad_token=pad, eos_token=eos,
                                   bos_token=bos or eos)


@contextlib.contextmanager
def seeded(seed: int, threads: Optional[int] = 1) -> Iterator[None]:
    """Run a block with ``torch.manual_seed(seed)`` on a forked RNG and ``threads`` CPU threads
    (None: leave them); the caller's RNG state and thread count are restored after."""
    import torch
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(before)


def cache_root() -> Path:
    """``$ABSTRACT_CACHE_DIR/models`` (default ``.abstract-cache/models``)."""
    return Path(os.environ.get("ABSTRACT_CACHE_DIR", ".abstract-cache")) / "models"


def _source(fn: Callable[..., Any]) -> str:
    """The text of the file defining ``fn`` (its model class and training code too)."""
    try:
        return Path(inspect.getfile(fn)).read_text(encoding="utf-8")
    except (OSError, TypeError):
        return inspect.getsource(fn)


def build_key(fn: Callable[..., Any], options: dict[str, Any], version: Any = None) -> str:
    """16 hex digits of sha256 over the options (sorted JSON), ``version`` and the builder's source."""
    h = hashlib.sha256(json.dumps({"options": options, "version": version}, sort_keys=True, default=repr).encode())
    h.update(_source(fn).encode("utf-8"))
    return h.hexdigest()[:16]


def _options(fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def cached_build(name: str, *, skeleton: Optional[Callable[..., Any]] = None, version: Any = None
                 ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Cache what the decorated builder returns, keyed by its options and its file's source.

    The builder returns ``(hf_model, tokenizer)`` (saved with ``save_pretrained``) or an
    ``nn.Module`` (its ``state_dict`` saved as safetensors; ``skeleton(**options)`` must build
    the same module untrained, so a cached load is ``skeleton`` + the saved weights). ``name``
    prefixes the cache entry (``models/<name>-<key>``); ``version`` is mixed into the key, for a
    change the source does not show (a data file). Writes are atomic (a temporary name, then a
    rename), so concurrent builds never read half a file."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def build(*args: Any, cache: bool = True, **kwargs: Any) -> Any:
            options = _options(fn, args, kwargs)
            if not cache:
                return _fresh(fn, options)
            key = build_key(fn, options, version)
            folder = cache_root() / f"{name}-{key}"
            weights = folder.with_suffix(".safetensors")
            if (folder / "config.json").is_file():
                return _load_pretrained(folder)
            if weights.is_file() and skeleton is not None:
                loaded = _load_module(skeleton, options, weights)
                if loaded is not None:
                    return loaded
            made = fn(**options)
            if _is_pretrained(made):
                _save_pretrained(made, folder)
                return _load_pretrained(folder)
            if skeleton is None:
                raise TypeError(f"@cached_build({name!r}): {fn.__name__} returned a {type(made).__name__}; "
                                "a plain module needs skeleton= (how to build it untrained) to be cached")
            _save_module(made, weights)
            return made
        return build
    return wrap


def _is_pretrained(made: Any) -> bool:
    return isinstance(made, tuple) and len(made) == 2 and hasattr(made[0], "save_pretrained")


def _fresh(fn: Callable[..., Any], options: dict[str, Any]) -> Any:
    """Without the cache: an HF pair still goes through a (temporary) save/load round trip, so
    that ``cache=False`` returns exactly what a cached load would."""
    made = fn(**options)
    if not _is_pretrained(made):
        return made
    tmp = Path(tempfile.mkdtemp(prefix="abstract-build-"))
    try:
        _save_pretrained(made, tmp / "model")
        return _load_pretrained(tmp / "model")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _save_pretrained(made: tuple, folder: Path) -> None:
    model, tok = made
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    if tok is not None:
        tok.save_pretrained(tmp)
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def _load_pretrained(folder: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    return model, tok


def _save_module(module: Any, path: Path) -> None:
    from safetensors.torch import save_file
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(tmp))
    os.replace(tmp, path)


def _load_module(skeleton: Callable[..., Any], options: dict[str, Any], path: Path) -> Any:
    """The skeleton with the cached weights, or None (the file removed) when they do not fit:
    a stale or damaged entry is rebuilt rather than failing the run."""
    from safetensors.torch import load_file
    module = skeleton(**options)
    try:
        module.load_state_dict(load_file(str(path)))
    except Exception as err:  # safetensors and load_state_dict raise several types
        print(f"warning: ignoring cached weights {path}: {err}", file=sys.stderr)
        path.unlink(missing_ok=True)
        return None
    return module.eval()
