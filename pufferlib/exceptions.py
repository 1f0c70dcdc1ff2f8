"""Every error type pufferlib raises, in one place."""


class APIUsageError(RuntimeError):
    """The caller used the API wrongly: a bad argument, a missing attribute, a mismatched buffer.
    The message names the problem and, where there is one, the fix."""


class ClosedError(RuntimeError):
    """The env or vector env was used after close()."""


class EnvWorkerError(RuntimeError):
    """An env raised, or a worker process died, inside a vector backend.

    Attributes: `worker` (index), `envs` (global env indices the worker held), `exitcode` (for a
    dead worker, else None), `remote_traceback` (the worker's traceback text, else '')."""

    def __init__(self, message, worker=None, envs=(), exitcode=None, remote_traceback=''):
        super().__init__(message)
        self.worker = worker
        self.envs = tuple(envs)
        self.exitcode = exitcode
        self.remote_traceback = remote_traceback


class EnvDataError(RuntimeError):
    """An env produced data that cannot be used: non-finite values, a wrong dtype or shape."""


class EnvTimeoutError(TimeoutError):
    """A vector env waited longer than its timeout; `workers` lists the workers still pending."""

    def __init__(self, message, workers=()):
        super().__init__(message)
        self.workers = tuple(workers)


class CheckpointError(RuntimeError):
    """A trainer checkpoint cannot be used: missing, corrupt, or saved for another env or policy."""
