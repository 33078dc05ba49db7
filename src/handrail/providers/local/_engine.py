"""One GGUF model in this process: prompt layout, label scoring and constrained generation.

Everything here is blocking and not thread-safe: callers hold `Engine.lock` (the handler runs
each call in a worker thread under it). llama_cpp is imported by `load`, never at module import.

The engine keeps the tokens it last evaluated in the KV cache (sequence 0) and re-evaluates only
what differs from the new prompt: the instructions and examples that every document of a node
shares are paid for once per process, not once per document.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import json
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


class ContextOverflow(Exception):
    """The prompt (plus room for the answer) does not fit the model's context window."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Generation:
    text: str
    tokens: list[tuple[str, float]]
    """Each generated token's text and log-probability (under the grammar, if one was used)."""
    finish_reason: str
    """`stop` (end of generation or grammar complete) or `length` (max_tokens reached)."""
    prompt_tokens: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Scores:
    logprobs: dict[str, float]
    """Per label: log-probability of the label's tokens (and end marker) after the prompt."""
    prompt_tokens: int
    scored_tokens: int


@dataclass(kw_only=True)
class Engine:
    path: Path
    llama: Any
    chat_template: str | None
    """The GGUF's chat template (instruct models); None for a base model: plain text layout."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    priors: dict[tuple[tuple[int, ...], tuple[str, ...]], dict[str, float]] = field(
        default_factory=dict
    )
    """Label log-probabilities after content-free prompts, by (prompt tokens, labels)."""
    _cached: list[int] = field(default_factory=list)
    _last_logits: FloatArray | None = None

    def remember_prior(
        self, key: tuple[tuple[int, ...], tuple[str, ...]], logprobs: dict[str, float]
    ) -> None:
        if len(self.priors) >= _MAX_PRIORS:  # a few nodes per process: keep the newest
            del self.priors[next(iter(self.priors))]
        self.priors[key] = logprobs

    # -- prompt layout -------------------------------------------------------------------------

    @property
    def instruct(self) -> bool:
        return self.chat_template is not None

    def render(self, messages: Sequence[Mapping[str, str]]) -> str:
        """The prompt text: the chat template for an instruct model (with the assistant turn
        opened), the messages' contents separated by blank lines for a base model."""
        if self.chat_template is None:
            return "\n\n".join(m["content"].strip() for m in messages)
        chat: Any = [dict(m) for m in messages]
        return str(self._formatter(messages=chat).prompt)

    @functools.cached_property
    def _formatter(self) -> Any:
        """The chat template, compiled once (Jinja compiles it on construction)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        vocab = self.llama._model
        return Jinja2ChatFormatter(
            template=str(self.chat_template),
            eos_token=vocab.token_get_text(vocab.token_eos()),
            bos_token=vocab.token_get_text(vocab.token_bos()),
        )

    def tokenize(self, text: str, *, bos: bool) -> list[int]:
        return list(self.llama.tokenize(text.encode("utf-8"), add_bos=bos, special=True))

    @property
    def n_ctx(self) -> int:
        return int(self.llama.n_ctx())

    def end_marker(self) -> list[int]:
        """The token(s) that close an answer: end of turn for an instruct model, a newline for
        a base model. Scoring it after a label tells `card` apart from `card arrival`."""
        if self.instruct:
            eot = int(self.llama._model.token_eot())
            return [eot if eot >= 0 else int(self.llama.token_eos())]
        return self.tokenize("\n", bos=False)

    # -- evaluation ----------------------------------------------------------------------------

    def _check_fits(self, n_prompt: int, extra: int) -> None:
        if n_prompt + extra > self.n_ctx:
            raise ContextOverflow(
                f"the prompt is {n_prompt} tokens and needs {extra} more for the answer, "
                f"but the context window of {self.path.name} is {self.n_ctx} tokens"
            )

    def _feed(self, prompt: list[int]) -> FloatArray:
        """Evaluate `prompt` into sequence 0, reusing the common prefix with what is cached;
        returns the logits after its last token."""
        import llama_cpp

        keep = 0
        for a, b in zip(self._cached, prompt, strict=False):
            if a != b:
                break
            keep += 1
        if keep == len(prompt) and self._last_logits is not None and keep == len(self._cached):
            return self._last_logits
        keep = min(keep, len(prompt) - 1)  # always evaluate at least one token to get logits
        ctx = self.llama._ctx
        if not ctx.kv_cache_seq_rm(0, keep, -1):
            ctx.kv_cache_clear()
            keep = 0
        self._cached = prompt[:keep]
        self._last_logits = None
        batch = self.llama._batch
        n_batch = int(self.llama.n_batch)
        for start in range(keep, len(prompt), n_batch):
            chunk = prompt[start : start + n_batch]
            batch.set_batch(batch=chunk, n_past=start, logits_all=False)
            ctx.decode(batch)
            self._cached = prompt[: start + len(chunk)]
        n_vocab = int(self.llama.n_vocab())
        row = llama_cpp.llama_get_logits_ith(ctx.ctx, -1)
        self._last_logits = np.ctypeslib.as_array(row, shape=(n_vocab,)).copy()
        return self._last_logits

    def score_labels(
        self, prompt: list[int], continuations: Mapping[str, list[int]], *, end: list[int]
    ) -> Scores:
        """Log-probability of each continuation (followed by `end`) after `prompt`.

        The prompt is evaluated once; each continuation is evaluated on top of it and then
        removed from the cache, so ten labels cost about ten times a few tokens.
        """
        longest = max(len(c) for c in continuations.values()) + len(end)
        self._check_fits(len(prompt), longest)
        first = _log_softmax(self._feed(prompt))
        ctx = self.llama._ctx
        batch = self.llama._batch
        n_vocab = int(self.llama.n_vocab())
        n_prompt = len(prompt)
        scored = 0
        logprobs: dict[str, float] = {}
        for label, tokens in continuations.items():
            total = float(first[tokens[0]])
            rest = [*tokens[1:], *end]
            if rest:
                fed = tokens[: len(rest)]  # token i predicts rest[i]
                ctx.kv_cache_seq_rm(0, n_prompt, -1)
                batch.set_batch(batch=fed, n_past=n_prompt, logits_all=True)
                ctx.decode(batch)
                rows = np.ctypeslib.as_array(ctx.get_logits(), shape=(len(fed), n_vocab))
                for i, token in enumerate(rest):
                    total += float(_log_softmax(rows[i])[token])
                scored += len(fed)
            logprobs[label] = total
        ctx.kv_cache_seq_rm(0, n_prompt, -1)
        self._cached = list(prompt)
        return Scores(logprobs=logprobs, prompt_tokens=n_prompt, scored_tokens=scored)

    def generate(
        self,
        prompt: list[int],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        grammar: str | None = None,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> Generation:
        """Sample up to `max_tokens` tokens after `prompt`, constrained by a GBNF `grammar` if
        given, recording each token's log-probability under the model.

        The log-probability is the model's own (before the grammar masks anything): a lower
        bound of the constrained one, so a forced token never looks surer than the model was.
        The grammar is checked on the few most likely tokens first and on the whole vocabulary
        only when none of them fits, which keeps a 262k-token vocabulary fast.
        """
        import llama_cpp

        self._check_fits(len(prompt), 1)
        max_tokens = min(max_tokens, self.n_ctx - len(prompt))
        logits = self._feed(prompt)
        ctx = self.llama._ctx
        vocab = self.llama._model.vocab
        checker = _GrammarChecker(vocab, grammar) if grammar is not None else None
        rng = np.random.default_rng(seed)
        out: list[tuple[str, float]] = []
        pending = b""
        text = ""
        finish = "length"
        position = len(prompt)
        batch = self.llama._batch
        n_vocab = int(self.llama.n_vocab())
        try:
            for _ in range(max_tokens):
                logprobs = _log_softmax(logits)
                token = _choose(logprobs, checker, temperature, rng)
                if checker is not None:
                    checker.accept(token)
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                # A token may end in the middle of a UTF-8 character: its text is what it
                # completes, so the pieces always add up to the decoded text.
                pending += _piece(vocab, token)
                piece = _decodable(pending)
                pending = pending[len(piece.encode("utf-8")) :]
                out.append((piece, float(logprobs[token])))
                text += piece
                self._cached.append(token)
                batch.set_batch(batch=[token], n_past=position, logits_all=False)
                ctx.decode(batch)
                position += 1
                if checker is not None and _complete_json(text, piece):
                    finish = "stop"
                    break
                if len(out) % 8 == 0 and _looping(text):
                    finish = "length"  # cut short, as max_tokens would have, only sooner
                    break
                hit = [text.index(s) for s in stop if s and s in text]
                if hit:
                    text = text[: min(hit)]
                    finish = "stop"
                    break
                row = llama_cpp.llama_get_logits_ith(ctx.ctx, -1)
                logits = np.ctypeslib.as_array(row, shape=(n_vocab,))
        finally:
            if checker is not None:
                checker.close()
            self._cached = self._cached[:position]
            self._last_logits = None
        return Generation(text=text, tokens=out, finish_reason=finish, prompt_tokens=len(prompt))


_TOP_K = 64
_MAX_PRIORS = 64


class GrammarRejected(ValueError):
    """llama.cpp could not compile a grammar; the message is its own first complaint."""


class _GrammarChecker:
    """A llama.cpp grammar sampler used only as a filter: which candidate tokens it allows."""

    def __init__(self, vocab: Any, grammar: str) -> None:
        import llama_cpp

        self._llama_cpp = llama_cpp
        # On a grammar it cannot parse, llama.cpp writes the error and the whole grammar to
        # file descriptor 2 itself (not through its log callback): catch it, and say it once.
        with _stderr_captured() as said:
            sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
        if not sampler:
            raise GrammarRejected(_first_complaint(said()))
        self._sampler = sampler

    def allowed(self, candidates: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
        llama_cpp = self._llama_cpp
        n = len(candidates)
        data = (llama_cpp.llama_token_data * n)()
        for i, token in enumerate(candidates):
            data[i].id = int(token)
            data[i].logit = 0.0
            data[i].p = 0.0
        array = llama_cpp.llama_token_data_array(data=data, size=n, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(self._sampler, ctypes.byref(array))
        return np.array([np.isfinite(data[i].logit) for i in range(n)], dtype=bool)

    def accept(self, token: int) -> None:
        self._llama_cpp.llama_sampler_accept(self._sampler, token)

    def close(self) -> None:
        if self._sampler:
            self._llama_cpp.llama_sampler_free(self._sampler)
            self._sampler = None


def grammar_error(vocab: Any, grammar: str) -> str | None:
    """What llama.cpp says is wrong with `grammar`, or None if it compiles."""
    try:
        _GrammarChecker(vocab, grammar).close()
    except GrammarRejected as e:
        return str(e)
    return None


@contextlib.contextmanager
def _stderr_captured() -> Iterator[Callable[[], str]]:
    """Whatever is written to file descriptor 2 meanwhile (C code included) goes to a temporary
    file instead of the terminal; the yielded function returns it afterwards."""
    captured: list[bytes] = []
    _flush_stderr()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (a daemon): nothing reaches a terminal anyway
        yield lambda: ""
        return
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield lambda: b"".join(captured).decode("utf-8", errors="replace")
            finally:
                _flush_stderr()
                os.dup2(saved, 2)
                sink.seek(0)
                captured.append(sink.read())
    finally:
        os.close(saved)


def _flush_stderr() -> None:
    if sys.stderr is not None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()


def _first_complaint(text: str) -> str:
    """llama.cpp's grammar error without the grammar it prints after it."""
    for line in text.splitlines():
        if "error" in line or "failed" in line:
            return line.strip()
    return "llama.cpp gave no reason"


_LOG = logging.getLogger("handrail.llama_cpp")
_LOG_CALLBACK: Any = None


def quiet_llama_logs() -> None:
    """Send llama.cpp's log lines to the `handrail.llama_cpp` logger at DEBUG, never to the
    terminal. (llama-cpp-python's own callback prints them to stderr whenever they are warnings:
    its table of levels predates ggml's renumbering, so "llama_kv_cache_iswa: using full-size
    SWA cache" reached every user even with verbose=False.) Idempotent."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def callback(level: int, text: bytes, user_data: Any) -> None:
        if _LOG.isEnabledFor(logging.DEBUG):
            _LOG.debug("%s", text.decode("utf-8", errors="replace").rstrip("\n"))

    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    _LOG_CALLBACK = callback  # llama.cpp holds a bare pointer: keep the ctypes object alive


def _choose(
    logprobs: FloatArray,
    checker: _GrammarChecker | None,
    temperature: float,
    rng: np.random.Generator,
) -> int:
    top = np.argpartition(logprobs, -_TOP_K)[-_TOP_K:]
    top = top[np.argsort(logprobs[top])[::-1]]
    if checker is not None:
        keep = checker.allowed(top)
        if not keep.any():
            top = np.flatnonzero(np.isfinite(logprobs))
            top = top[np.argsort(logprobs[top])[::-1]]
            keep = checker.allowed(top)
            if not keep.any():
                raise RuntimeError("the grammar allows no token; the JSON schema is unsatisfiable")
        top = top[keep]
    if temperature <= 0:
        return int(top[0])
    weights = np.exp((logprobs[top] - logprobs[top[0]]) / temperature)
    return int(rng.choice(top, p=weights / weights.sum()))


def _looping(text: str, *, times: int = 4, shortest: int = 40) -> bool:
    """Whether `text` ends with the same piece `times` times over (at least `shortest`
    characters in all): a small model stuck repeating itself, greedy decoding's usual failure,
    which would otherwise run to max_tokens."""
    for period in range(1, 101):
        span = period * times
        if span < shortest:
            continue
        if span > len(text):
            break
        tail = text[-span:]
        if tail == tail[:period] * times:
            return True
    return False


def _complete_json(text: str, piece: str) -> bool:
    if "}" not in piece and "]" not in piece:
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _piece(vocab: Any, token: int) -> bytes:
    import llama_cpp

    buf = ctypes.create_string_buffer(64)
    n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
    if n < 0:
        buf = ctypes.create_string_buffer(-n)
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
    return bytes(buf.raw[:n])


def _decodable(data: bytes) -> str:
    """The longest prefix of `data` that is whole UTF-8 characters, decoded."""
    for cut in range(len(data), max(len(data) - 4, -1), -1):
        try:
            return data[:cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def _log_softmax(logits: FloatArray) -> FloatArray:
    x = logits.astype(np.float64, copy=False)
    top = x.max()
    out: FloatArray = (x - (top + np.log(np.exp(x - top).sum()))).astype(np.float32)
    return out


_ENGINES: dict[Path, Engine] = {}
_LOAD_LOCK = threading.Lock()


def load(path: Path, *, n_ctx: int = 4096) -> Engine:
    """The engine for `path`, loaded once per process."""
    key = path.resolve()
    with _LOAD_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            if not _ENGINES:
                atexit.register(close_all)
            engine = _ENGINES[key] = _open(key, n_ctx=n_ctx)
        return engine


def close_all() -> None:
    """Free every loaded model now, while llama_cpp can still run its destructors (at
    interpreter exit its module globals are gone and `Llama.__del__` prints a traceback)."""
    with _LOAD_LOCK:
        for engine in _ENGINES.values():
            with engine.lock:
                engine.llama.close()
        _ENGINES.clear()


def _open(path: Path, *, n_ctx: int) -> Engine:
    from llama_cpp import Llama

    quiet_llama_logs()

    threads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    llama = Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        swa_full=True,  # prefix reuse rolls the cache back; a pruned sliding window cannot be
        verbose=False,
    )
    n_ctx_train = int(llama._model.n_ctx_train())
    if n_ctx_train < n_ctx:
        llama.close()
        llama = Llama(model_path=str(path), n_ctx=n_ctx_train, verbose=False, swa_full=True)
    template = llama.metadata.get("tokenizer.chat_template")
    return Engine(path=path, llama=llama, chat_template=template or None)
