"""Offline prequential evaluation (``recstream eval``): protocol, baselines, runner, report.

* :mod:`~streams.evaluation.protocol`: which events are scored, HR/NDCG, slices.
* :mod:`~streams.evaluation.baselines`: popularity, item-kNN, EASE (``observe``/``recommend``).
* :mod:`~streams.evaluation.client`: memoising wrapper of the in-process models.
* :mod:`~streams.evaluation.inprocess`: the runner over the real Processor.
* :mod:`~streams.evaluation.report`: JSON, Markdown and PNG outputs.
"""
