"""ENTRIX_LOCAL_CONTEXT: CDK context for `entrix local`'s template, kept apart from cdk.json's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from entrix.local import synth

JWKS = {"entrix:jwt_key_source": "jwks", "entrix:jwt_jwks_url": "https://idp.example/jwks"}


def touch(path: Path, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    os.utime(path, (mtime, mtime))


def test_the_variable_is_a_json_object_of_context() -> None:
    assert synth.local_context({}) == {}
    assert synth.local_context({synth.LOCAL_CONTEXT_VARIABLE: json.dumps(JWKS)}) == JWKS
    for wrong in ("jwks", "[1]"):
        with pytest.raises(synth.SynthError, match=synth.LOCAL_CONTEXT_VARIABLE):
            synth.local_context({synth.LOCAL_CONTEXT_VARIABLE: wrong})


def test_each_context_has_a_template_of_its_own(tmp_path: Path) -> None:
    touch(tmp_path / "cdk.json", 100)
    touch(tmp_path / "app.py", 100)
    touch(tmp_path / "cdk.out" / synth.TEMPLATE_FILE, 200)
    assert synth.fresh_template(tmp_path) == tmp_path / "cdk.out" / synth.TEMPLATE_FILE
    # The default template is never run for added context, nor the other way round.
    assert synth.fresh_template(tmp_path, JWKS) is None
    jwks_template = tmp_path / synth.local_outdir(JWKS) / synth.TEMPLATE_FILE
    touch(jwks_template, 300)
    assert synth.fresh_template(tmp_path, JWKS) == jwks_template
    assert synth.fresh_template(tmp_path) == tmp_path / "cdk.out" / synth.TEMPLATE_FILE
    other = {**JWKS, "entrix:jwt_issuer": "https://other.example"}
    assert synth.local_outdir(other) != synth.local_outdir(JWKS)
    assert synth.fresh_template(tmp_path, other) is None


def test_ensure_template_synthesizes_with_the_variables_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    touch(tmp_path / "cdk.json", 100)
    touch(tmp_path / "app.py", 100)
    made = []

    def fake_synthesize(root: Path, extra_context: dict[str, object] | None = None) -> Path:
        made.append(extra_context)
        path = root / synth.local_outdir(extra_context or {}) / synth.TEMPLATE_FILE
        touch(path, 200)
        return path

    monkeypatch.setattr(synth, "synthesize", fake_synthesize)
    monkeypatch.setenv(synth.LOCAL_CONTEXT_VARIABLE, json.dumps(JWKS))
    path, synthesized = synth.ensure_template(tmp_path)
    assert synthesized and made == [JWKS]
    assert synth.ensure_template(tmp_path) == (path, False)
