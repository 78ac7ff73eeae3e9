"""The evaluation harness of thesis chapter 4: masks, runs, set metrics, reports.

Modules, in the order data flows through them:

* :mod:`~tttkit.evaluation.masks` — one simulated user mask per image (``tttkit masks``);
* :mod:`~tttkit.evaluation.runner` — every strategy and reference on every image
  (``tttkit eval``), with :mod:`~tttkit.evaluation.references` (raw backbone, OpenCV),
  :mod:`~tttkit.evaluation.results` (append-only records), :mod:`~tttkit.evaluation.layout`
  (file names, seeds) and :mod:`~tttkit.evaluation.distributed` (torchrun);
* :mod:`~tttkit.evaluation.fid` and :mod:`~tttkit.evaluation.set_metrics` — FID;
* :mod:`~tttkit.evaluation.aggregate`, :mod:`~tttkit.evaluation.tables`,
  :mod:`~tttkit.evaluation.figures`, :mod:`~tttkit.evaluation.report` — ``tttkit report``.

See ``docs/evaluation.md`` for the run folder's layout and the design choices.
"""
