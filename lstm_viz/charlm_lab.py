"""What the Char-model lab page shows, without streamlit: a char-level language model's training
curve in bits per character against the unigram and bigram baselines, and its checkpoint as bytes
that lstm_viz.load_model (and the Your model page) read back."""

from __future__ import annotations

import io

import plotly.graph_objects as go
import torch

from .charlm import CharLMTrainer
from .figures import ARCH_COLORS, decimate

MAX_POINTS = 1000


def training_figure(trainer: CharLMTrainer, baselines: dict[str, float]) -> go.Figure:
    """Bits per character of every training batch (faint, block means past MAX_POINTS steps), on the
    validation probe at each evaluation (markers), and the baselines as dashed lines."""
    history = trainer.history
    color = ARCH_COLORS.get(trainer.config.arch, "#888888")
    fig = go.Figure()
    if history.loss:
        loss, steps = decimate(torch.tensor(history.loss).numpy(), MAX_POINTS)
        fig.add_trace(
            go.Scatter(x=steps + 1, y=loss, mode="lines", name="training batches",
                       line=dict(color=color, width=1), opacity=0.45)
        )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=history.eval_steps, y=history.probe_bits, mode="lines+markers", name="validation probe",
                   line=dict(color=color, width=2.5))
    )  # fmt: skip
    for k, (name, bits) in enumerate(sorted(baselines.items())):
        fig.add_hline(
            y=bits, line=dict(color="grey", dash=("dash", "dot")[k % 2], width=1),
            annotation_text=f"{name} baseline {bits:.2f}", annotation_position="top right",
        )  # fmt: skip
    fig.update_layout(
        xaxis_title="training step",
        yaxis_title="bits per character",
        legend=dict(orientation="h", yref="container", yanchor="bottom", y=0, xanchor="left", x=0),
        margin=dict(l=60, r=20, t=30, b=40),
        height=380,
    )
    return fig


def checkpoint_bytes(trainer: CharLMTrainer) -> bytes:
    """torch.save of the trainer's checkpoint: plain tensors and lists, loads with weights_only=True."""
    buffer = io.BytesIO()
    torch.save(trainer.checkpoint(), buffer)
    return buffer.getvalue()
