"""Benchmark of PII de-identification against naive per-cell Presidio (a script, not a test).

Run: ``.venv/bin/python bench/bench_pii.py [--rows 200000] [--naive-rows 100] [--no-link]``.

The table comes from the demo generator: 6 PII columns (name, e-mail, phone, card, IBAN,
IP address), the free-text ``notes`` (names, e-mails, phones and SSNs inside) and 6 non-PII
columns including the label. Our path (column sampling, vectorised transforms, batched
free text, verification scan) runs on all rows; the naive path (``analyze`` + ``anonymize``
on every cell, full spaCy pipeline, all recognizers) on the first ``--naive-rows`` rows,
extrapolated per row. Prints rows/s, the speed-up, recall per entity type for both (from
``pii_truth``), whether non-PII columns stayed identical, and peak RSS.
"""

from __future__ import annotations

import argparse
import logging
import resource
import time
from typing import Any

from mlsecops_provider.core.pii.engine import (
    DEFAULT_NLP_MODEL,
    IGNORED_LABELS,
    LANGUAGE,
    NER_MAPPING,
    offline_tld_extractor,
)
from mlsecops_provider.core.pii.gate import Deidentifier, PIIConfig
from mlsecops_provider.core.pii.transform import measure_recall
from mlsecops_provider.include.generator import LABEL, PII_COLUMNS, generate

Rates = tuple[float, float]  # rows/s by wall-clock and by CPU time of this process
PII = ["full_name", "email", "phone", "card_number", "iban", "ip_address"]
TEXT = "notes"
CLEAN = ["age", "annual_income", "loan_amount", "employment_type", "region", LABEL]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(frame: Any, ssn: list[str], config: PIIConfig) -> tuple[Rates, dict[str, Any], bool]:
    start = time.perf_counter()
    deidentifier = Deidentifier.prepare(config)
    loaded, cpu = time.perf_counter(), time.process_time()
    outcome = deidentifier.run(frame)
    seconds, cpu = time.perf_counter() - loaded, time.process_time() - cpu
    metrics = outcome.result.metrics
    print(f"ours: engine load {loaded - start:.1f} s; run {seconds:.1f} s, cpu {cpu:.1f} s", end="")
    print(f" (detect {metrics['seconds_detect']} s, transform {metrics['seconds_transform']} s,")
    print(f"      verify {metrics['seconds_verify']} s), verdict {outcome.result.verdict.value},")
    print(f"      residual max {metrics['residual_rate_max']:.4%}")
    recall = recall_of(frame, outcome.frame, ssn)
    same = all(
        outcome.frame[c].equals(frame[c]) and outcome.frame[c].dtype == frame[c].dtype
        for c in CLEAN
    )
    return (len(frame) / seconds, len(frame) / cpu), recall, same


def config_note(config: PIIConfig) -> str:
    regions = ",".join(config.phone_regions) or "Presidio default"
    return f"link_row_values={config.link_row_values}, phone regions {regions}"


def recall_of(before: Any, after: Any, ssn: list[str]) -> dict[str, Any]:
    planted = {c: (PII_COLUMNS[c], before[c].astype(str).tolist()) for c in PII}
    recall = measure_recall(before, after, planted, [TEXT])
    ssn_only = measure_recall(
        before.assign(_ssn=ssn), after.assign(_ssn="x"), {"_ssn": ("US_SSN", ssn)}, [TEXT]
    )
    recall["free_text"].update(ssn_only["free_text"])
    return recall


def naive_engine() -> tuple[Any, Any]:
    """Presidio as documented: full spaCy pipeline, every predefined recognizer (offline)."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import EmailRecognizer
    from presidio_anonymizer import AnonymizerEngine

    nlp_configuration = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": LANGUAGE, "model_name": DEFAULT_NLP_MODEL}],
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": NER_MAPPING,
            "labels_to_ignore": list(IGNORED_LABELS),
        },
    }
    nlp_engine = NlpEngineProvider(nlp_configuration=nlp_configuration).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=[LANGUAGE])

    class OfflineEmail(EmailRecognizer):  # the same offline suffix list as ours
        def validate_result(self, pattern_text: str) -> bool:
            return bool(offline_tld_extractor()(pattern_text).fqdn)

    analyzer.registry.remove_recognizer("EmailRecognizer")
    analyzer.registry.add_recognizer(OfflineEmail())
    return analyzer, AnonymizerEngine()


def run_naive(frame: Any, ssn: list[str]) -> tuple[Rates, dict[str, Any]]:
    analyzer, anonymizer = naive_engine()
    analyzer.analyze("warm up John Smith", LANGUAGE)
    out = frame.copy()
    start, cpu = time.perf_counter(), time.process_time()
    for column in frame.columns:
        cells = []
        for value in frame[column].astype(str):
            results = analyzer.analyze(value, LANGUAGE)
            cells.append(anonymizer.anonymize(value, results).text)
        out[column] = cells
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"naive: {len(frame)} rows x {frame.shape[1]} cells in {seconds:.1f} s, cpu {cpu:.1f} s")
    return (len(frame) / seconds, len(frame) / cpu), recall_of(frame, out, ssn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--naive-rows", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-link", action="store_true", help="NER only in free text")
    parser.add_argument("--phone-regions", default="", help="e.g. US,GB (default: Presidio's)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)  # notes on other languages

    full = generate(args.rows, seed=args.seed)
    frame, ssn = full[[*PII, TEXT, *CLEAN]], full["ssn"].astype(str).tolist()
    del full
    print(f"table: {len(frame)} rows; PII {PII}; free text [{TEXT}]; non-PII {CLEAN}")
    regions = tuple(r for r in args.phone_regions.split(",") if r)
    config = PIIConfig(
        exclude_columns=(LABEL,), link_row_values=not args.no_link, phone_regions=regions
    )
    ours, ours_recall, same = run_ours(frame, ssn, config)
    ours_rss = peak_rss_mib()
    naive, naive_recall = run_naive(frame.head(args.naive_rows), ssn[: args.naive_rows])
    print(f"\n{'rows/s':<8}{'wall':>10}{'cpu':>10}")
    print(f"{'ours':<8}{ours[0]:>10.1f}{ours[1]:>10.1f}   ({config_note(config)})")
    print(f"{'naive':<8}{naive[0]:>10.1f}{naive[1]:>10.1f}   (per-cell analyze + anonymize)")
    print(f"speed-up: {ours[0] / naive[0]:.1f}x wall, {ours[1] / naive[1]:.1f}x cpu")
    print(f"peak RSS after ours: {ours_rss:.0f} MiB")
    print(f"non-PII columns and label identical (values and dtype): {same}")
    print(f"\n{'recall':<36}{'ours':>8}{'naive':>8}")
    for scope in ("columns", "free_text"):
        for entity, figures in sorted(ours_recall[scope].items()):
            naive = naive_recall[scope].get(entity, {}).get("recall", float("nan"))
            label = f"{scope}:{entity} (n={figures['planted']})"
            print(f"{label:<36}{figures['recall']:>8.4f}{naive:>8.4f}")


if __name__ == "__main__":
    main()
