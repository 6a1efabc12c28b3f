"""The local model engine over llama-cpp-python. Imports neither the store nor the UI."""

from app.llm.engine import Engine, EngineError, EngineState, ModelSpec
from app.llm.types import ChatRequest, GenerationParams, Reply, ReplyChunk, Turn

__all__ = [
    "ChatRequest",
    "Engine",
    "EngineError",
    "EngineState",
    "GenerationParams",
    "ModelSpec",
    "Reply",
    "ReplyChunk",
    "Turn",
]
