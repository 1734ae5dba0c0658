"""perfsuite: where does a PyTorch training step spend its time?

The suite runs interchangeable implementations of one MNIST training workload
under instrumented phases (see :data:`perfsuite.phases.PHASES`) and writes the
raw measurements, their statistics and reports to a run folder.
"""

__version__ = "0.1.0"
