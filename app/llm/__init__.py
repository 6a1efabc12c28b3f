"""The local model engine over llama-cpp-python. Imports neither the store nor the UI."""

from app.llm.engine import Engine, EngineError, EngineState, Job, ModelSpec, ReplyStream
from app.llm.types import ChatRequest, Fold, GenerationParams, Prefill, Reply, Turn

__all__ = [
    "ChatRequest",
    "Engine",
    "EngineError",
    "EngineState",
    "Fold",
    "GenerationParams",
    "Job",
    "ModelSpec",
    "Prefill",
    "Reply",
    "ReplyStream",
    "Turn",
]
