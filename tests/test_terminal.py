"""The terminal tables print what they are given, brackets included (rich reads ``[…]`` as markup)."""

from rich.console import Console

from perfsuite.render.terminal import summary_table

GLOO = "rank 0: RuntimeError: [/__w/pytorch/third_party/gloo/transport/tcp/pair.cc:545] Read error"


def test_a_failure_reason_with_brackets_is_printed_as_text():
    summary = {
        "dataset": "mnist",
        "threads": 2,
        "implementations": {"ddp": {"status": "failed", "reason": GLOO}},
    }
    console = Console(width=400, record=True)
    console.print(summary_table(summary))
    assert GLOO in console.export_text()
