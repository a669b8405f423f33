"""Parsl site configurations for bps, where the ctrl_bps_parsl ones need adapting.

`Torque`: ``lsst.ctrl.bps.parsl.sites.Torque`` with its ``mpirun`` launcher accepting the ``script_dir``
argument that current Parsl passes to launchers (the stock launcher raises ``TypeError`` when Parsl submits
the job).
"""

from __future__ import annotations

__all__ = ["PbsMpiRunLauncher", "Torque"]

from lsst.ctrl.bps.parsl.sites import torque as _torque
from parsl.executors.base import ParslExecutor


class PbsMpiRunLauncher(_torque.PbsMpiRunLauncher):
    """ctrl_bps_parsl's PBS ``mpirun`` launcher, with the current Parsl launcher signature."""

    def __call__(self, command: str, tasks_per_node: int, nodes_per_block: int, script_dir: str = "") -> str:
        return super().__call__(command, tasks_per_node, nodes_per_block)


class Torque(_torque.Torque):
    """PBS/Torque site of ctrl_bps_parsl with a launcher that works with current Parsl.

    Recognises the same BPS settings as ``lsst.ctrl.bps.parsl.sites.Torque`` (``nodes``,
    ``tasks_per_node``, ``walltime``, ``queue``, ``scheduler_options``, ``worker_init``).
    """

    def make_executor(self, label: str, **kwargs) -> ParslExecutor:
        executor = super().make_executor(label, **kwargs)
        stock = executor.provider.launcher
        executor.provider.launcher = PbsMpiRunLauncher(
            debug=stock.debug, bash_location=stock.bash_location, overrides=stock.overrides
        )
        return executor
