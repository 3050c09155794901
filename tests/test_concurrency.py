"""Threads that build, record and train at once get exactly what one thread gets alone, and leave
torch's global generator to whoever uses it (issue #14, item 1: Streamlit runs sessions in threads)."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import torch
from pagetest import run_page
from test_repeat import fingerprint

import lstm_viz
from lstm_viz import cli, prose, tables
from lstm_viz.settings import Settings, run

THREADS = 16


def build_and_record(case: tuple) -> str:
    arch, seed, batch_size, num_layers, bidirectional = case
    model = lstm_viz.build_model(arch, 3, 24, seed=seed, num_layers=num_layers, bidirectional=bidirectional)
    x = lstm_viz.make_input("gaussian", batch_size, 150, 3, seed=seed)
    return fingerprint(lstm_viz.record(model, x))


def at_once(function, items: list) -> list:
    """function over items, each on its own thread, all released together."""
    start = threading.Barrier(len(items))

    def go(item):
        start.wait()
        return function(item)

    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(go, items))


def test_threads_record_exactly_what_one_thread_records():
    # one and two layers, both directions, batches split into halves (8 and more) or not
    shapes = [(3, 1, False), (9, 1, False), (2, 2, True), (1, 1, True)]
    cases = [(arch, seed, *shape) for seed, shape in enumerate(shapes) for arch in ("rnn", "lstm", "gru")]
    cases = (cases * 2)[:THREADS]  # the same settings twice at once, too
    alone = [build_and_record(case) for case in cases]
    assert at_once(build_and_record, cases) == alone


def weights(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.state_dict().values()]


def build_all(seed: int) -> list[torch.Tensor]:
    """Everything the library builds with random draws or around torch modules, for one seed."""
    trainer = lstm_viz.Trainer(lstm_viz.TrainConfig(hidden_size=8, lag=10, steps=1, test_size=16, seed=seed))
    charlm = lstm_viz.CharLM.build(lstm_viz.CharLMConfig(hidden_size=8, seed=seed))
    buffer = io.BytesIO()
    torch.save(lstm_viz.build_model("gru", 3, 5, seed=seed).state_dict(), buffer)
    loaded = lstm_viz.load_model(buffer.getvalue())
    out = [t for run_ in trainer.runs.values() for t in weights(run_.readout) + weights(run_.recurrent)]
    out += weights(charlm.readout) + weights(charlm.recurrent) + weights(loaded.module)
    return out + [
        lstm_viz.make_input("sine", 2, 20, 3, seed=seed),
        lstm_viz.make_batch("adding", 4, 10, seed=seed)[0],
    ]


def test_threads_build_what_one_thread_builds_and_leave_the_global_generator_alone():
    seeds = list(range(7))  # and the user of the global generator: 8 threads
    alone = [build_all(seed) for seed in seeds]
    stop = threading.Event()
    draws = []

    def user_of_the_global_generator(_):  # someone else's code in the same process
        torch.manual_seed(1234)
        expected = torch.rand(1000)
        while not stop.is_set():
            torch.manual_seed(1234)
            draws.append(torch.equal(torch.rand(1000), expected))
        return None

    def builder(seed):
        try:
            return build_all(seed)
        finally:
            if seed == seeds[-1]:
                stop.set()

    results = at_once(
        lambda job: job[0](job[1]), [(user_of_the_global_generator, None)] + [(builder, s) for s in seeds]
    )
    for got, expected in zip(results[1:], alone, strict=True):
        assert len(got) == len(expected) and all(
            torch.equal(a, b) for a, b in zip(got, expected, strict=True)
        )
    assert draws and all(draws), f"{draws.count(False)} of {len(draws)} draws moved by another thread"


PAGES = [  # distinct settings: every page computes its own recordings (none from the shared store)
    {"seq_len": "600", "hidden_size": "48", "batch_size": "3", "seed": str(seed)} for seed in (101, 102, 103)
] + [{"seq_len": "300", "hidden_size": "32", "batch_size": "9", "seed": "104"}]


def alone(params: dict) -> list[lstm_viz.Recording]:
    """The Gradient flow page's recordings for these settings, computed one at a time."""
    settings = Settings(**{name: int(value) for name, value in params.items()})
    runs = [(settings, "rnn"), (settings, "lstm"), (settings.replace(lstm_init="chrono"), "lstm")]
    return [run(s, arch) for s, arch in runs]


def command_line(params: dict) -> str:
    """What `python -m lstm_viz` prints for these settings (the RNN and the LSTM)."""
    out = io.StringIO()
    flags = [part for name, value in params.items() for part in (f"--{name.replace('_', '-')}", value)]
    assert cli.main([*flags, "--quiet"], out, io.StringIO()) == 0
    return out.getvalue()


def test_pages_opened_at_once_show_the_numbers_of_one_run_alone():
    """Four app sessions and a command-line run at once: each page's table and metric cards are
    those of the same settings recorded alone, and the command line prints what it prints alone."""
    expected = [tables.summary_table(tables.flow_summary(alone(params))) for params in PAGES]
    printed = command_line(PAGES[0])
    assert tables.summary_text(alone(PAGES[0])[:2]) in printed
    jobs = [lambda params=params: run_page("app.py", params) for params in PAGES]
    *pages, printed_at_once = at_once(lambda job: job(), [*jobs, lambda: command_line(PAGES[0])])
    assert printed_at_once == printed
    for at, table in zip(pages, expected, strict=True):
        pd.testing.assert_frame_equal(at.dataframe[0].value.reset_index(drop=True), table, check_exact=True)
        rates = zip(table["model"], table["decades lost per step"], strict=True)
        assert [(m.label, m.value) for m in at.metric] == [
            (model, prose.metric_texts(rate)[0]) for model, rate in rates
        ]
