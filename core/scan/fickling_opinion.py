"""fickling as a further, opt-in opinion on top-level pickle files (policy ``use_fickling``).

Only fickling's two strongest verdicts become findings (``OVERTLY_MALICIOUS`` critical,
``LIKELY_OVERTLY_MALICIOUS`` high): its lower verdicts flag every benign scikit-learn pickle
(``LIKELY_UNSAFE`` for any non-builtin import), so they would only be false positives. When
fickling cannot parse a file (it raises on protocol 0 and 5 pickles of scikit-learn models),
that is no opinion, not an error: our own scanner has already decided about that file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mlsecops_provider.core.scan.formats import Finding

log = logging.getLogger(__name__)
PICKLE_FORMATS = frozenset({"pickle", "torch_legacy"})


def fickling_findings(files: dict[str, Path], formats: dict[str, str]) -> list[Finding]:
    """fickling's strongest verdicts on every top-level pickle file of the scan."""
    try:
        from fickling.analysis import Severity, check_safety
        from fickling.fickle import Pickled
    except ImportError:
        return []
    levels = {
        Severity.OVERTLY_MALICIOUS.name: "critical",
        Severity.LIKELY_OVERTLY_MALICIOUS.name: "high",
    }
    found = []
    for source, path in files.items():
        if formats.get(source) not in PICKLE_FORMATS:
            continue
        try:
            result = check_safety(Pickled.load(path.read_bytes()))
        except Exception as err:  # fickling's parser raises many types on valid pickles
            log.debug("fickling gave no opinion on %s (%s)", source, type(err).__name__)
            continue
        severity = levels.get(result.severity.name)
        if severity:
            reason = f"fickling: {result.severity.name.lower()}: {str(result)[:200]}"
            found.append(Finding(source, severity, reason, scanner="fickling"))
    return found
