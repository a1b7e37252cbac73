"""The systems ``bench_jobs.py`` measures, behind one interface (``base.System``), and what the
harness needs around them.

- ``base``: the interface, the sizes of the work, cold-start timing of a script;
- ``measures``: what each measure times, its figures and which ratios it prints;
- ``work``: the one definition of the work every system runs, and its checks;
- ``disruptor_system`` (with ``disruptor_peers`` and ``http_load``), ``ray_system``,
  ``dask_system``, ``pool_system``: the systems;
- ``report``: figures per repetition, min and median, paired ratios, tables and JSON;
- ``procs``: process trees and memory from /proc, and ending every process the run started.
"""
