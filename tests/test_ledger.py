"""The results ledger of the benchmark scripts: entries found only by their exact recipe."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from ledger import Ledger  # noqa: E402

RECIPE = {"preset": "fast", "arch": "ssm", "data": ["/tmp/somewhere/sweep-train.bin"], "steps": 400, "lr": 0.004,
          "overrides": ()}


def test_lookup_ignores_data_folder(tmp_path):
    ledger = Ledger(tmp_path / "ledger.json")
    ledger.record("sweep", RECIPE, training={"valid_bpb": 2.5})

    moved = {**RECIPE, "data": ["/elsewhere/sweep-train.bin"]}
    entry = Ledger(tmp_path / "ledger.json").lookup("sweep", moved)

    assert entry["training"] == {"valid_bpb": 2.5}
    assert entry["measured"] and entry["machine"]


def test_lookup_other_recipe_misses(tmp_path):
    ledger = Ledger(tmp_path / "ledger.json")
    ledger.record("sweep", RECIPE, training={"valid_bpb": 2.5})

    assert ledger.lookup("sweep", {**RECIPE, "lr": 0.002}) is None
    assert ledger.lookup("other", RECIPE) is None


def test_record_new_recipe_replaces(tmp_path):
    ledger = Ledger(tmp_path / "ledger.json")
    ledger.record("run", RECIPE, training={"valid_bpb": 2.5}, evaluation={"exact_bpb": 2.6})
    ledger.record("run", {**RECIPE, "steps": 800}, training={"valid_bpb": 2.4})

    saved = json.loads((tmp_path / "ledger.json").read_text())["entries"]["run"]
    assert saved["recipe"]["steps"] == 800
    assert "evaluation" not in saved


def test_shipped_ledger_has_fast_pair():
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "phase1.json"
    entries = json.loads(path.read_text())["entries"]

    for name in ("fast-ssm", "fast-transformer"):
        assert entries[name]["evaluation"]["verified"] is True
        assert entries[name]["recipe"]["steps"] == 1800
