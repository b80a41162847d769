"""Every user mistake on the command line is a one-line message and exit code 2, never a traceback."""

import pytest
from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()


def _fails_cleanly(args, expected, env=None):
    out = runner.invoke(app, args, env=env or {})
    text = out.output
    assert out.exit_code == 2, text
    assert expected in text and "Traceback" not in text and text.strip().startswith("error:")
    assert len(text.strip().splitlines()) <= 3, text  # one message (rich may wrap a long line)


def test_submit_with_a_missing_npz(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("space: hybrid-seq\ndataset: {name: npz, path: nothere.npz}\n")
    _fails_cleanly(["submit", str(config)], "npz file not found", env={"NAS_TOKEN": "nas_x"})


@pytest.mark.parametrize("args, expected", [
    (["submit", "missing.yaml"], "config file not found"),
    (["status", "--url", "http://127.0.0.1:1"], "cannot reach"),
    (["status"], "no API token"),
    (["export", "--result", "missing/result.json", "--arch", "abcdef"], "result file not found"),
    (["latency", "predict", "missing.json", "arch.json"], "latency table not found"),
    (["latency", "build", "--space", "hybrid-tiny", "--backend", "tvm", "--out", "x.json"], "backend"),
    (["spaces", "sample", "nope"], "unknown search space"),
])
def test_mistakes_are_one_line_messages(args, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NAS_TOKEN", raising=False)
    env = {"NAS_TOKEN": "nas_x"} if args[0] == "status" and "--url" in args else None
    _fails_cleanly(args, expected, env=env)
