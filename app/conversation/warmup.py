"""Getting a newly installed model ready before its first conversation (issue 13).

The app saves the model's evaluation of Haven's own prompt (``prompts/companion.md``, the
same for everyone) at its first start, and loads it at every later one
(:mod:`app.llm.prompt_cache`). On the very first start there is nothing to load yet, so a
first message typed while the model reads that prompt waits several seconds on a 3B model.
``haven models download`` and ``import`` therefore do it once, right after the install,
while the person is already waiting: the first session then starts as quickly as any.
"""

from __future__ import annotations

import logging

from app.conversation.prompts import PromptLibrary
from app.llm import ChatRequest, Engine, GenerationParams
from app.paths import DataPaths
from app.runtime import selected_model_spec
from app.settings import Settings

log = logging.getLogger("haven.warmup")


def prepare_model(paths: DataPaths, settings: Settings) -> str:
    """Load the selected model, evaluate Haven's own prompt and save that to the prompt
    cache. Returns the prompt cache's outcome: "saved", "loaded" (it was there already)
    or "" (nothing saved: see the log). Blocking; raises what loading the model raises."""
    spec = selected_model_spec(paths, settings)
    system = PromptLibrary().render("companion.md")
    engine = Engine()
    try:
        engine.load(spec).result()
        request = ChatRequest(system=system, turns=(), shared_prefix=len(system),
                              params=GenerationParams(max_tokens=1))
        done = engine.prefill(request).result()
        log.info("model prepared: %s, prompt cache %s", done.status, done.prompt_cache or "unused")
        return done.prompt_cache
    finally:
        engine.close()
