"""vLLM in-process backend (`pip install theramind[vllm]`), for a GPU machine without a server."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from theramind.config import ModelSpec
from theramind.errors import ConfigError
from theramind.llm.parsing import split_reasoning
from theramind.llm.types import BaseBackend, Completion, Request, Usage

log = logging.getLogger(__name__)


def _structured_params(schema: dict[str, Any]) -> dict[str, Any]:
    """Return the SamplingParams keyword that constrains output to a JSON schema."""
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(json=schema)}
    except ImportError:  # older vLLM releases
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(json=schema)}


class VLLMBackend(BaseBackend):
    """`vllm.LLM` in this process; structured output through vLLM's JSON-schema decoding."""

    name = "vllm"

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.model = spec.model
        self.constraint = spec.structured_output or "json_schema"
        self._llm: Any = None
        self._lock = threading.Lock()

    def _engine(self) -> Any:
        with self._lock:
            if self._llm is None:
                try:
                    from vllm import LLM
                except ImportError as exc:
                    raise ConfigError(
                        "backend 'vllm' needs vLLM: `pip install 'theramind[vllm]'` "
                        "on a GPU machine"
                    ) from exc
                self._llm = LLM(model=self.spec.model, **self.spec.engine_args)
            return self._llm

    def complete(self, request: Request) -> Completion:
        """Generate one chat completion."""
        from vllm import SamplingParams

        llm = self._engine()
        extra = _structured_params(request.json_schema) if request.json_schema else {}
        params = SamplingParams(
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            seed=request.seed,
            **extra,
        )
        started = time.perf_counter()
        result = llm.chat([dict(m) for m in request.messages], sampling_params=params)[0]
        output = result.outputs[0]
        text, reasoning = split_reasoning(output.text)
        return Completion(
            text=text,
            reasoning=reasoning,
            usage=Usage(
                len(result.prompt_token_ids or []),
                len(output.token_ids or []),
                time.perf_counter() - started,
            ),
            model=self.model,
            finish_reason=output.finish_reason,
        )
