"""Offline prequential evaluation (``recstream eval``): protocol, baselines, runner, report.

* :mod:`~recstream.lab.evaluation.protocol`: which events are scored, HR/NDCG, slices.
* :mod:`~recstream.lab.evaluation.baselines`: popularity, item-kNN, EASE (``observe``/``recommend``).
* :mod:`~recstream.lab.evaluation.client`: memoising wrapper of the in-process models.
* :mod:`~recstream.lab.evaluation.inprocess`: the runner over the real Processor.
* :mod:`~recstream.lab.evaluation.report`: JSON, Markdown and PNG outputs.
"""
