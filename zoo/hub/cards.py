"""Model cards rendered from ``model_cards/<task>.md`` with huggingface_hub's ModelCard/ModelCardData."""
from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from zoo.models.base import architecture_class

TEMPLATES = Path(__file__).resolve().parents[2] / "model_cards"


def render_card(name: str, cfg: dict, **extra) -> str:
    """Render the card of model ``name`` from its config.json dict (``results`` feed the model-index)."""
    res = cfg.get("results") or {}
    meta = architecture_class(cfg["architecture"]).card_metadata
    evals = []
    for m in res.get("metrics", []):
        # a metric may name its own eval set (multi-set cards); else the results' dataset
        evals.append(EvalResult(task_type=meta["task_type"],
                                dataset_type=m.get("dataset_type", res.get("dataset_type", "an4")),
                                dataset_name=m.get("dataset_name", res.get("dataset_name", "CMU AN4")),
                                dataset_split=res.get("split", "test"),
                                metric_type=m["type"], metric_value=m["value"], metric_name=m.get("name")))
    data = ModelCardData(license=extra.get("license", "apache-2.0"), library_name="zoo", language="en",
                         datasets=extra.get("datasets", ["cmu-an4"]), metrics=meta["metrics"],
                         pipeline_tag=meta["pipeline_tag"], tags=meta["tags"],
                         model_name=name, eval_results=evals or None)
    template = (TEMPLATES / f"{cfg.get('task', 'asr')}.md").read_text()
    return str(ModelCard.from_template(data, template_str=template, name=name, cfg=cfg, res=res, **extra))
