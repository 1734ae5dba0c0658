"""Built-in implementations of the perfsuite workload, registered as ``perfsuite.impls`` entry points."""
