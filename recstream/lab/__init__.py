"""The lab: everything around the worker that is not the worker.

Evaluation, benchmarks, the soak test, replay of datasets, the live demo, training of the
fusion model and the worker-process harness the tests and benchmarks share. The product (the
worker in :mod:`streams`, the Triton side in :mod:`serving`, the models in :mod:`encoders`, the
contracts in :mod:`schemas`) never imports this package; ``make lint`` checks that with
import-linter (``.importlinter``). Its extra dependencies are the ``[lab]`` and ``[train]``
extras.
"""
