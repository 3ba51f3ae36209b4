"""The lab: everything around the worker that is not the worker.

Evaluation, benchmarks, the soak test, replay of datasets, the live demo and training of the
fusion model. The worker-process harness, the list collector and the event producer they share
with the tests are :mod:`recstream.testing`, one layer below. The product (the
worker in :mod:`streams`, the Triton side in :mod:`serving`, the models in :mod:`encoders`, the
contracts in :mod:`schemas`) never imports this package; ``make lint`` checks that with
import-linter (``.importlinter``). Its extra dependencies are the ``[lab]`` and ``[train]``
extras.
"""
