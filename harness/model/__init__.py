"""The domain at the centre: what a measured cell is, how it is run, and what the harness sees while it runs.

Plain data only (enums and frozen dataclasses); this module imports only harness.errors and no Kubernetes
client, so results, analysis, verdicts and reports depend on it alone. Every other module speaks these types:
a string is never a domain value.

    RunOptions  every knob of a measured run, grouped by concern (traffic, timing, thresholds, schedule, subject,
                output, consent), validated once (`validate`), its messages naming settings, not command-line flags
    within      the check of one setting's range, as those messages say it
    check_mode  whether a connection mode goes with a discovery and a client
    CellSpec    one cell: variant × trigger × connection mode × trial
    Event       one timestamped change seen during a run (pod, endpoint, or a mark the harness set)
"""

from harness.model.domain import (
    WINDOW_PHASES,
    CellSpec,
    Client,
    ConnMode,
    Discovery,
    EndpointState,
    Event,
    Phase,
    PodState,
    Source,
    Status,
    Trigger,
    Via,
    WorkloadKind,
)
from harness.model.options import (
    Consent,
    Output,
    RunOptions,
    Schedule,
    Subject,
    Thresholds,
    Timing,
    Traffic,
    certify_trials,
    check_mode,
    within,
)

__all__ = [
    "WINDOW_PHASES",
    "CellSpec",
    "Client",
    "ConnMode",
    "Consent",
    "Discovery",
    "EndpointState",
    "Event",
    "Output",
    "Phase",
    "PodState",
    "RunOptions",
    "Schedule",
    "Source",
    "Status",
    "Subject",
    "Thresholds",
    "Timing",
    "Traffic",
    "Trigger",
    "Via",
    "WorkloadKind",
    "certify_trials",
    "check_mode",
    "within",
]
