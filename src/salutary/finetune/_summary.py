"""Tables of fine-tuning results: per-arm summaries and a Markdown table."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["accuracy_text", "finetune_markdown", "summarize_finetune"]


def summarize_finetune(results: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model, arm): accuracy mean and std over seeds, mean times, peak memory.

    Columns: ``dataset, model, arm, seeds, n_added, accuracy_mean, accuracy_std,
    surrogate_accuracy, label_agreement, selection_seconds, finetune_seconds,
    eval_seconds, peak_rss_mb`` (times are means, memory the maximum). ``accuracy_std``
    is the sample standard deviation over seeds, NaN for a single seed.
    """
    keys = ["dataset", "model", "arm"]
    g = results.groupby(keys, sort=False)
    out = g.agg(
        seeds=("seed", "nunique"),
        n_added=("n_added", "first"),
        accuracy_mean=("accuracy", "mean"),
        accuracy_std=("accuracy", "std"),
        surrogate_accuracy=("surrogate_accuracy", "mean"),
        label_agreement=("label_agreement", "mean"),
        selection_seconds=("selection_seconds", "mean"),
        finetune_seconds=("finetune_seconds", "mean"),
        eval_seconds=("eval_seconds", "mean"),
        peak_rss_mb=("peak_rss_mb", "max"),
    ).reset_index()
    out["n_added"] = out["n_added"].astype(np.int64)
    return out


def accuracy_text(mean: float, std: float, seeds: int) -> str:
    """``0.904 ± 0.014`` over several seeds, ``0.904`` for one: a spread needs two seeds,
    and "± 0.000" of one seed would read as certainty."""
    return f"{mean:.3f}" if seeds < 2 else f"{mean:.3f} ± {std:.3f}"


def finetune_markdown(results: pd.DataFrame) -> str:
    """A Markdown table of :func:`summarize_finetune` (one row per dataset, model and arm)."""
    summary = summarize_finetune(results)
    lines = [
        "| dataset | model | arm | added | test accuracy | surrogate acc. | label agreement "
        "| selection s | fine-tune s | test s | peak RSS MiB |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]

    def num(v: Any, fmt: str) -> str:
        return "-" if not math.isfinite(v) else format(v, fmt)

    for row in summary.to_dict("records"):
        lines.append(
            f"| {row['dataset']} | {row['model']} | {row['arm']} | {row['n_added']} "
            f"| {accuracy_text(row['accuracy_mean'], row['accuracy_std'], row['seeds'])} "
            f"| {num(row['surrogate_accuracy'], '.3f')} | {num(row['label_agreement'], '.0%')} "
            f"| {num(row['selection_seconds'], '.1f')} | {num(row['finetune_seconds'], '.1f')} "
            f"| {num(row['eval_seconds'], '.1f')} | {num(row['peak_rss_mb'], '.0f')} |"
        )
    return "\n".join(lines) + "\n"
