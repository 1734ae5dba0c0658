"""perfsuite.profile.scopes: a script's sampled stacks given their phase by its record scopes."""

import textwrap

from perfsuite.profile.scopes import ScriptAttribution, scopes_of
from perfsuite.profile.stacks import Frame

SCRIPT = textwrap.dedent(
    """\
    from perfsuite import record
    from perfsuite.record import phase


    @record.phase("eval")
    def evaluate(model):
        return model.score()


    def train(model, loader):
        with record.epoch():
            for x, y in record.batches(loader):
                with record.phase("forward"):
                    out = model(x)
                with phase("loss"):
                    loss = out.sum()
                loss.backward()
            evaluate(model)
    """
)
# lines of SCRIPT: evaluate's body 7; the epoch block's body 12-18; forward 14; loss 16;
# backward (unmarked) 17; the call of evaluate 18


def test_scopes_are_read_from_the_source():
    scopes = scopes_of(SCRIPT)
    assert scopes.epochs == ((12, 18),)
    assert sorted(scopes.phases) == [(7, 7, "eval"), (14, 14, "forward"), (16, 16, "loss")]
    assert scopes.phase_at(14) == "forward" and scopes.phase_at(17) is None
    assert scopes.in_epoch(17) and not scopes.in_epoch(20)


def _attribution(tmp_path):
    (tmp_path / "train.py").write_text(SCRIPT)
    return ScriptAttribution((tmp_path / "elsewhere", tmp_path))


def _stack(*frames):
    return tuple(Frame(name, file, line) for name, file, line in frames)


MAIN = ("<module>", "run.py", 3)


def test_a_sample_in_a_phase_block_is_that_phase_with_what_ran_below_it(tmp_path):
    rules = _attribution(tmp_path)
    stack = _stack(MAIN, ("train", "train.py", 14), ("Module._call_impl", "torch/nn/modules/module.py", 1500))
    assert rules.locate(stack) == ("forward", 2)
    assert rules.locate(_stack(MAIN, ("train", "train.py", 16))) == ("loss", 2)


def test_the_batch_wrapper_is_batching_and_an_unmarked_line_is_other(tmp_path):
    rules = _attribution(tmp_path)
    batches = ("Recorder.batches", "/x/site-packages/perfsuite/core/recording.py", 270)
    loader = ("_DataLoaderIter.__next__", "torch/utils/data/dataloader.py", 630)
    assert rules.locate(_stack(MAIN, ("train", "train.py", 12), batches, loader)) == ("batching", 3)
    assert rules.locate(_stack(MAIN, ("train", "train.py", 17), ("backward", "torch/_tensor.py", 500))) == (
        "other",
        2,
    )


def test_a_decorated_function_is_its_phase(tmp_path):
    rules = _attribution(tmp_path)
    timed = ("timed", "/x/perfsuite/core/recording.py", 120)
    stack = _stack(MAIN, ("train", "train.py", 18), timed, ("evaluate", "train.py", 7), ("score", "model.py", 3))
    assert rules.locate(stack) == ("eval", 4)


def test_samples_outside_every_epoch_are_dropped(tmp_path):
    rules = _attribution(tmp_path)
    assert rules.locate(_stack(MAIN, ("load", "data.py", 10))) is None
    assert rules.locate(_stack(MAIN, ("evaluate", "train.py", 7))) is None  # eval after training: no epoch
    assert rules.locate(_stack(MAIN, ("gone", "missing.py", 1))) is None  # an unreadable file has no scopes
