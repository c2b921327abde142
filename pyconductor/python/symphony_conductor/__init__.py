"""symphony_conductor: the Python conductor over the Symphony engine.

* :class:`Conductor` (``symphony_conductor.conductor``) starts a bus from a config, keeps a
  global view of every extension instance's state, handles the bus's events and asks a
  :class:`~symphony_conductor.policy.Policy` which instance serves each request, when to
  restart, and when to shed or delay load. It needs the compiled ``symphony_ipc`` module.
* Policies (``policy``, ``learned``), the workload simulator (``simulator``) and the honest
  evaluation (``evaluation``) are pure Python + numpy.
"""

from .policy import (Admission, AdmissionDecision, InstanceHealth, LeastOutstanding,
                     Observation, Outcome, Policy, RestartDecision, RoundRobin, RuleBased,
                     baselines)
from .learned import LinearBanditPolicy, train

__all__ = [
    "Admission", "AdmissionDecision", "Conductor", "ConductorConfig", "InstanceHealth",
    "LeastOutstanding", "LinearBanditPolicy", "Observation", "Outcome", "Policy",
    "RestartDecision", "RoundRobin", "RuleBased", "baselines", "train",
]


def __getattr__(name: str):
    # The conductor needs the compiled module; the policies and the simulator do not.
    if name in ("Conductor", "ConductorConfig", "ConductorError"):
        from . import conductor
        return getattr(conductor, name)
    raise AttributeError(name)
