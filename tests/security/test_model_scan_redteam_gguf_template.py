"""Red team: GGUF chat templates that build the attribute name they index with.

The template check resolved constant keys (``x['__class__']``, ``'__cla' ~ 'ss__'``) but
not keys the template builds with filters or methods (``['__cla','ss__']|join``,
``'%c'|format(95)``, ``|replace``), bound by ``set`` or by a loop over literals: all passed,
and an unsandboxed serving stack would read ``__class__``/``__globals__`` through them.

Advisory: CVE-2024-34359 ("Llama Drama", llama-cpp-python rendering a
GGUF ``tokenizer.chat_template`` outside Jinja's sandbox), and the Jinja SSTI write-ups it
cites (string-built attribute names, ``|attr`` and ``map(attribute=...)``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.scan.gate import scan_model
from mlsecops_provider.core.scan.gguf import template_problems
from tests.core.scan.malicious_corpus import gguf_file

BUILT_KEYS = {
    "join_filter_set": "{% set n = ['__cla', 'ss__']|join %}{{ ''[n] }}",
    "format_char_codes": (
        "{% set u = '%c'|format(95) %}{% set n = u ~ u ~ 'class' ~ u ~ u %}{{ ''[n] }}"
    ),
    "loop_over_literals": "{% for n in ['__class__'] %}{{ ''[n] }}{% endfor %}",
    "inline_join": "{{ ''[('_', '_class_', '_')|join] }}",
    "replace_filter": "{{ ''['XXclassXX'|replace('X', '_')] }}",
    "map_attribute_built": "{{ [''] | map(attribute=('_', '_class_', '_')|join) | list }}",
}
BENIGN = {
    "tool_properties": (
        "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}"
        "{% if loop.index0 > 0 %}{{ messages[loop.index0 - 1]['role'] }}{% endif %}"
        "{% endfor %}{% for tool in tools %}{% for key in ['name', 'description'] %}"
        "{{ tool[key] }}{% endfor %}{% for k, v in tool['parameters'].items() %}"
        "{{ k }}={{ tool['parameters'][k] }}{% endfor %}{% endfor %}"
    ),
    "think_split": (
        "{% for m in messages %}{% set c = m['content'].split('</think>')[-1] %}"
        "{{ '<|im_start|>' + m['role'] + '\\n' + c | trim + '<|im_end|>' }}{% endfor %}"
    ),
}


@pytest.mark.parametrize("name", sorted(BUILT_KEYS))
def test_string_built_attribute_key_fails_the_gate(name: str, tmp_path: Path) -> None:
    """A template indexing with a string it builds is a finding and fails the gate."""
    path = tmp_path / "model.gguf"
    path.write_bytes(gguf_file(BUILT_KEYS[name]))
    result = scan_model(path)
    assert result.verdict is Verdict.FAIL
    assert any("chat_template" in f["reason"] for f in result.findings), result.findings


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_templates_indexing_with_data_pass(name: str) -> None:
    """No false positive: keys read from messages, loop indices and literal key lists."""
    assert template_problems(BENIGN[name]) == []
